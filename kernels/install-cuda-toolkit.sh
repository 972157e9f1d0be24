#!/usr/bin/env bash
# install-cuda-toolkit.sh: install nvcc (CUDA 11.8) from Debian 12's non-free archive.
# (nvcc, ptxas and cuobjdump: what make ptx and make ptx-check need.)
# Idempotent: does nothing when nvcc is already on PATH. Needs root (or sudo).
# See ../shared/notes/toolchain.md (beside the project root): about 3 minutes, 1.6 GB download, 5.3 GB on disk.
# --no-install-recommends matters: without it apt pulls kernel modules and profilers.
set -euo pipefail

if command -v nvcc >/dev/null 2>&1; then
	echo "install-cuda-toolkit: nvcc already present: $(nvcc --version | tail -n 2 | head -n 1)"
	exit 0
fi

SUDO=""
if [ "$(id -u)" != "0" ]; then
	SUDO="sudo"
fi

SRC=/etc/apt/sources.list.d/debian-nonfree.sources
if [ ! -f "$SRC" ]; then
	$SUDO tee "$SRC" >/dev/null <<'X'
Types: deb
URIs: http://deb.debian.org/debian
Suites: bookworm bookworm-updates
Components: contrib non-free non-free-firmware
Signed-By: /usr/share/keyrings/debian-archive-keyring.gpg
X
fi

export DEBIAN_FRONTEND=noninteractive
$SUDO apt-get update
$SUDO apt-get install -y --no-install-recommends nvidia-cuda-toolkit
nvcc --version
