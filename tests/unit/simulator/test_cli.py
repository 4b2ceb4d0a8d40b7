from __future__ import annotations

from relay_cli.main import build_parser, main
from relay_cli.sim import build_config
from relay_core.catalogue.demo import demo_catalogue


def test_sim_command_is_registered_with_its_options():
    args = build_parser().parse_args(["sim", "--port", "9100", "--window-s", "1"])
    assert (args.port, args.window_s, args.host, args.config) == (9100, 1.0, None, None)


def test_window_override_reaches_every_provider():
    config = build_config(demo_catalogue("http://127.0.0.1:9100"), 1.0)
    assert {p.window_s for p in config.providers} == {1.0}
    assert {p.window_s for p in build_config(demo_catalogue("http://x"), None).providers} == {60.0}


def test_a_missing_catalogue_is_reported_not_served(tmp_path, capsys):
    assert main(["sim", "--config", str(tmp_path / "missing.yaml")]) == 2
    assert "missing.yaml" in capsys.readouterr().err
