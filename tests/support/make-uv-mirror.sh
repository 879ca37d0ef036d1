#!/bin/sh
# Build a uv release mirror from PyPI's `uv` wheel, for a real-uv end-to-end test.
#
#   tests/support/make-uv-mirror.sh OUTDIR [VERSION]
#
# OUTDIR receives, for this machine's platform:
#   uv-<target>.tar.gz          release-shaped: uv-<target>/uv and uv-<target>/uvx
#   uv-<target>.tar.gz.sha256   "<hex>  <file>", as on the GitHub release
#   manifest.json               {"version", "target", "file", "sha256", "size"} for MCPCTL_UV_MANIFEST
#
# Then, e.g.:
#   MCPCTL_TEST_UV_MIRROR=OUTDIR cargo test --test it runtime::real_uv_from_mirror
# or by hand:
#   MCPCTL_UV_MANIFEST=OUTDIR/manifest.json MCPCTL_UV_DOWNLOAD_URL=file://OUTDIR mcpctl runtime install --yes
#
# Needs python3 with pip (PyPI reachable), or UV_WHEEL=/path/to/uv-VERSION-*.whl.
# The wheel on Linux holds the glibc build, not the musl one the release pins; the
# file keeps the release's name so the installer asks for the same path.
set -eu

OUT=${1:?usage: make-uv-mirror.sh OUTDIR [VERSION]}
VERSION=${2:-0.11.21}

case "$(uname -m)" in
  x86_64|amd64) ARCH=x86_64 ;;
  aarch64|arm64) ARCH=aarch64 ;;
  *) echo "make-uv-mirror: unsupported machine $(uname -m)" >&2; exit 1 ;;
esac
case "$(uname -s)" in
  Linux) TARGET=$ARCH-unknown-linux-musl ;;
  Darwin) TARGET=$ARCH-apple-darwin ;;
  *) echo "make-uv-mirror: unsupported OS $(uname -s)" >&2; exit 1 ;;
esac

mkdir -p "$OUT"
OUT=$(cd "$OUT" && pwd)
WORK=$(mktemp -d)
trap 'rm -rf "$WORK"' EXIT

if [ -n "${UV_WHEEL:-}" ]; then
  WHEEL=$UV_WHEEL
else
  python3 -m pip download --quiet --no-deps --only-binary :all: -d "$WORK" "uv==$VERSION"
  WHEEL=$(ls "$WORK"/uv-"$VERSION"-*.whl | head -n 1)
fi

python3 - "$WHEEL" "$OUT" "$VERSION" "$TARGET" <<'EOF'
import hashlib, io, json, os, sys, tarfile, zipfile

wheel, out, version, target = sys.argv[1:]
stem = f"uv-{target}"
file_name = f"{stem}.tar.gz"
found = {}
with zipfile.ZipFile(wheel) as z:
    for name in z.namelist():
        base = name.rsplit("/", 1)[-1]
        if ".data/scripts/" in name and base in ("uv", "uvx"):
            found[base] = z.read(name)
missing = {"uv", "uvx"} - set(found)
if missing:
    sys.exit(f"make-uv-mirror: {wheel} lacks {sorted(missing)}")

buf = io.BytesIO()
with tarfile.open(fileobj=buf, mode="w:gz", format=tarfile.USTAR_FORMAT) as tar:
    d = tarfile.TarInfo(stem)
    d.type, d.mode = tarfile.DIRTYPE, 0o755
    tar.addfile(d)
    for base in ("uv", "uvx"):
        info = tarfile.TarInfo(f"{stem}/{base}")
        info.size, info.mode = len(found[base]), 0o755
        tar.addfile(info, io.BytesIO(found[base]))
data = buf.getvalue()
digest = hashlib.sha256(data).hexdigest()
with open(os.path.join(out, file_name), "wb") as f:
    f.write(data)
with open(os.path.join(out, file_name + ".sha256"), "w") as f:
    f.write(f"{digest}  {file_name}\n")
with open(os.path.join(out, "manifest.json"), "w") as f:
    json.dump({"version": version, "target": target, "file": file_name, "sha256": digest, "size": len(data)}, f, indent=2)
    f.write("\n")
print(f"{out}/{file_name} ({len(data)} bytes, sha256 {digest})")
EOF
