"""The vCenter collector: VMs and ESXi hosts of a VMware vCenter, read with pyVmomi."""

from quipu.collectors.vcenter.collector import connect, inspect

__all__ = ["connect", "inspect"]
