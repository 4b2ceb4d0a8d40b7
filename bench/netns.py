"""Hosts on one machine: network namespaces, each with one interface (a veth pair) on a bridge.

    with Network(["api", "w1", "w2", "data"]) as net:
        net.hosts["api"].popen(["relay", "api", "--host", net.hosts["api"].ip])
        net.cut(net.hosts["w1"])      # its link down: nothing reaches it, nor leaves it
        net.restore(net.hosts["w1"])

Each host also gets a hostname of its own (a UTS namespace per process it runs), so workers
report distinct hosts. The bridge, in the caller's namespace, has the subnet's ``.254``: the
caller (a test, a bench) reaches every host. The addresses are those of this run's own
namespaced hosts, in a /24 of 10.231.0.0/16 drawn per run; nothing leaves the machine.
Needs root and ``ip`` (Debian's iproute2): :func:`unavailable` says why when either is missing.
"""

from __future__ import annotations

import os
import secrets
import shutil
import subprocess
from dataclasses import dataclass, field
from typing import IO, Any


def _ip(*args: str) -> None:
    subprocess.run(["ip", *args], check=True, capture_output=True)


def unavailable() -> str | None:
    """Why namespaces cannot be made here (None when they can)."""
    if os.geteuid() != 0:
        return "making network namespaces needs root"
    if shutil.which("ip") is None or shutil.which("unshare") is None:
        return "`ip` (iproute2) or `unshare` (util-linux) is not installed"
    probe = f"rlyprobe{os.getpid()}"
    made = subprocess.run(
        ["ip", "netns", "add", probe], capture_output=True, text=True, check=False
    )
    if made.returncode != 0:
        return f"`ip netns add` failed here: {made.stderr.strip()}"
    subprocess.run(["ip", "netns", "del", probe], capture_output=True, check=False)
    return None


@dataclass(frozen=True)
class Host:
    name: str  # also its hostname
    ns: str
    ip: str
    link: str  # the bridge's end of its veth pair

    def argv(self, command: list[str]) -> list[str]:
        """``command`` run in this host's namespace, under its own hostname."""
        as_host = 'hostname "$0" && exec "$@"'
        unshared = ["unshare", "--uts", "--", "sh", "-c", as_host, self.name]
        return ["ip", "netns", "exec", self.ns, *unshared, *command]

    def popen(
        self, command: list[str], env: dict[str, str], log: IO[bytes] | int | None = None
    ) -> subprocess.Popen[bytes]:
        return subprocess.Popen(self.argv(command), env=env, stdout=log, stderr=log)


@dataclass
class Network:
    names: list[str]
    tag: str = field(default_factory=lambda: secrets.token_hex(2))
    subnet: str = field(default_factory=lambda: f"10.231.{secrets.randbelow(250) + 1}")
    hosts: dict[str, Host] = field(default_factory=dict)

    @property
    def bridge(self) -> str:
        return f"rbr{self.tag}"

    def __enter__(self) -> Network:
        try:
            _ip("link", "add", self.bridge, "type", "bridge")
            _ip("addr", "add", f"{self.subnet}.254/24", "dev", self.bridge)
            _ip("link", "set", self.bridge, "up")
            for i, name in enumerate(self.names, start=1):
                self.hosts[name] = self._host(i, name)
        except BaseException:
            self.close()
            raise
        return self

    def _host(self, i: int, name: str) -> Host:
        host = Host(name, f"rly{self.tag}-{name}", f"{self.subnet}.{i}", f"rv{self.tag}{i}")
        _ip("netns", "add", host.ns)
        _ip("link", "add", host.link, "type", "veth", "peer", "name", "eth0", "netns", host.ns)
        _ip("link", "set", host.link, "master", self.bridge, "up")
        _ip("-n", host.ns, "addr", "add", f"{host.ip}/24", "dev", "eth0")
        _ip("-n", host.ns, "link", "set", "eth0", "up")
        _ip("-n", host.ns, "link", "set", "lo", "up")
        return host

    def cut(self, host: Host) -> None:
        """Take ``host``'s link down (its processes keep running, cut off)."""
        _ip("link", "set", host.link, "down")

    def restore(self, host: Host) -> None:
        _ip("link", "set", host.link, "up")

    def close(self) -> None:
        for host in self.hosts.values():
            subprocess.run(["ip", "netns", "del", host.ns], capture_output=True, check=False)
        subprocess.run(["ip", "link", "del", self.bridge], capture_output=True, check=False)

    def __exit__(self, *exc: Any) -> None:
        self.close()
