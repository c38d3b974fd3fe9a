#!/bin/sh
# The file tree of the runtime image, built by the Dockerfile's build stage and, the same way, by
# tests/deploy/test_image.py into a temp directory (there is no Docker daemon in CI).
#
#   sh scripts/build_image_tree.sh venv VENV        the production environment, exactly as locked
#   sh scripts/build_image_tree.sh app VENV APP     the code and gen/ under APP, importable from VENV
#
# Run from the source tree (pyproject.toml, uv.lock, protos/, runtime/, services/, gateway/) with
# uv on PATH. The interpreter is the one uv finds (UV_PYTHON picks another); nothing is downloaded
# but packages.
set -eu

phase=$1
venv=$2
protoc_venv="$venv.protoc"

case "$phase" in
venv)
	# No dev, bench or proto group, and the project itself is not installed: only its dependencies.
	UV_PROJECT_ENVIRONMENT="$venv" uv sync --frozen --no-default-groups --no-install-project --compile-bytecode --quiet
	# protoc lives in a separate environment the runtime stage never copies.
	UV_PROJECT_ENVIRONMENT="$protoc_venv" uv sync --frozen --no-default-groups --only-group proto --no-install-project --quiet
	;;
app)
	app=$3
	mkdir -p "$app/gen"
	# shellcheck disable=SC2046  # one argument per .proto file
	"$protoc_venv/bin/python" -m grpc_tools.protoc -Iprotos --python_out="$app/gen" --grpc_python_out="$app/gen" \
		$(find protos -name '*.proto' | sort)
	find "$app/gen" -mindepth 1 -type d -exec touch {}/__init__.py \;
	# Production packages only: no tests, bench, scripts or tools.
	cp -R runtime services gateway "$app/"
	find "$app" -name __pycache__ -type d -prune -exec rm -rf {} +
	# Bytecode now: the root filesystem is read-only at run time (PYTHONDONTWRITEBYTECODE=1).
	"$venv/bin/python" -m compileall -q "$app"
	site=$("$venv/bin/python" -c 'import sysconfig; print(sysconfig.get_paths()["purelib"])')
	printf '%s\n%s\n' "$app" "$app/gen" >"$site/switchboard_paths.pth"
	;;
*)
	echo "usage: $0 venv VENV | app VENV APP" >&2
	exit 2
	;;
esac
