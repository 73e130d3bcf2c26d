# The devices hilbox's QEMU is built with (scripts/build-qemu.mjs configures QEMU with
# --without-default-devices and places this file at configs/devices/x86_64-softmmu/default.mak).
# Only what a hilbox run, its tests and a user's Windows image use; a device missing here is
# refused by QEMU at start ("'<name>' is not a valid device model name"). Adding one is one line.

# The machine (its own chipset devices follow from it: ICH9 LPC, AHCI/IDE, SMBus, RTC, PIT, PIC,
# the ISA serial port, the keyboard controller, fw_cfg, pflash for OVMF).
CONFIG_Q35=y
# Timers a Linux guest picks up on q35 as it does with QEMU's default device set.
CONFIG_HPET=y

# hilbox-pci, and the root ports it and hot-plugged devices sit in.
CONFIG_HILBOX_PCI=y
CONFIG_PCIE_PORT=y

# The Linux guest: network (SSH), entropy; a block device for users' disks.
CONFIG_VIRTIO_PCI=y
CONFIG_VIRTIO_NET=y
CONFIG_VIRTIO_RNG=y
CONFIG_VIRTIO_BLK=y

# A Windows guest: e1000e network, VGA, pvpanic crash reports (e1000 for older images).
CONFIG_E1000E_PCI_EXPRESS=y
CONFIG_E1000_PCI=y
CONFIG_VGA_PCI=y
CONFIG_PVPANIC_ISA=y

# Peers and tooling tests: ivshmem-plain (the framebuffer benchmark's stock-QEMU row), edu (the
# qtest client's own test).
CONFIG_IVSHMEM_DEVICE=y
CONFIG_EDU=y
