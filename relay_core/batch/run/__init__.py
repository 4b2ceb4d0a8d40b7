"""What runs in the worker: intake, feeding lines at the pace the limits allow, recording
outcomes, finalizing."""
