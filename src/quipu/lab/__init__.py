"""The lab: real OpenSSH sshd hosts on loopback addresses."""

from quipu.lab.control import lab_down, lab_up, load_lab
from quipu.lab.errors import LabError
from quipu.lab.state import Lab, LabHost

__all__ = ["Lab", "LabError", "LabHost", "lab_down", "lab_up", "load_lab"]
