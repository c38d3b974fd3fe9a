"""Proto lint and breaking-change check for Switchboard's public contracts.

Other teams compile protos/, so once a field number or an RPC has landed it must never change
meaning. This tool compiles protos/ into a descriptor set, reduces it to a canonical description
(every message's fields by number, every enum's values by number, every RPC's signature) and
compares that with ``protos/proto.lock.json``, the description of the contracts as they are on
main. Additions pass; anything that would break a compiled client fails:

- a message, enum, service or RPC removed;
- a field or enum value number removed without being reserved, or given another name, type,
  cardinality or oneof;
- an RPC's request, response or streaming mode changed.

Usage::

    python tools/proto_check.py                 # lint + check against the lock (what `make test` runs)
    python tools/proto_check.py --update-lock   # record additive changes in the lock (refuses breaking ones)
    python tools/proto_check.py --protos DIR --lock FILE
    python tools/proto_check.py --buf .tools/buf/bin/buf [--against REF_OR_DIR]

With ``--buf``, ``buf breaking`` also runs (:mod:`tools.buf_breaking`): against the protos of
the commit this branch left main at, or of ``--against`` (a git ref, or a directory of protos).
"""

from __future__ import annotations

import argparse
import json
import re
import subprocess
import sys
import tempfile
from pathlib import Path
from typing import Any

from google.protobuf import descriptor_pb2

from tools.buf_breaking import baseline_ref, buf_breaking, check_against_git

REPO_ROOT = Path(__file__).resolve().parent.parent
DEFAULT_PROTOS = REPO_ROOT / "protos"
DEFAULT_LOCK = DEFAULT_PROTOS / "proto.lock.json"

FDP = descriptor_pb2.FieldDescriptorProto
_TYPE_NAMES = {value: name.removeprefix("TYPE_").lower() for name, value in FDP.Type.items()}
_PASCAL = re.compile(r"^[A-Z][A-Za-z0-9]*$")
_SNAKE = re.compile(r"^[a-z][a-z0-9_]*$")
_UPPER_SNAKE = re.compile(r"^[A-Z][A-Z0-9_]*$")
_PACKAGE = re.compile(r"^switchboard\.[a-z][a-z0-9_]*\.v[0-9]+$")

Description = dict[str, dict[str, Any]]


def compile_protos(proto_root: Path) -> descriptor_pb2.FileDescriptorSet:
    """Compile every .proto under ``proto_root`` with grpcio-tools' protoc."""
    files = sorted(str(p.relative_to(proto_root)) for p in proto_root.rglob("*.proto"))
    if not files:
        raise SystemExit(f"proto check: no .proto files under {proto_root}")
    with tempfile.TemporaryDirectory() as tmp:
        out = Path(tmp) / "descriptors.binpb"
        result = subprocess.run(
            [
                sys.executable,
                "-m",
                "grpc_tools.protoc",
                f"-I{proto_root}",
                f"--descriptor_set_out={out}",
                *files,
            ],
            capture_output=True,
            text=True,
            check=False,
        )
        if result.returncode != 0:
            raise SystemExit(f"proto check: protoc failed:\n{result.stderr.strip()}")
        fds = descriptor_pb2.FileDescriptorSet()
        fds.ParseFromString(out.read_bytes())
    return fds


def _field_type(field: descriptor_pb2.FieldDescriptorProto) -> str:
    return field.type_name.lstrip(".") if field.type_name else _TYPE_NAMES[field.type]


def _describe_message(prefix: str, msg: descriptor_pb2.DescriptorProto, out: Description) -> None:
    name = f"{prefix}.{msg.name}"
    real_oneofs = [o.name for o in msg.oneof_decl]
    fields = {}
    for field in msg.field:
        oneof = ""
        if field.HasField("oneof_index") and not field.proto3_optional:
            oneof = real_oneofs[field.oneof_index]
        fields[str(field.number)] = {
            "name": field.name,
            "type": _field_type(field),
            "label": "repeated" if field.label == FDP.LABEL_REPEATED else "singular",
            "oneof": oneof,
        }
    reserved = [n for r in msg.reserved_range for n in range(r.start, r.end)]
    out["messages"][name] = {"fields": fields, "reserved": sorted(reserved)}
    for nested in msg.nested_type:
        _describe_message(name, nested, out)
    for enum in msg.enum_type:
        _describe_enum(name, enum, out)


def _describe_enum(prefix: str, enum: descriptor_pb2.EnumDescriptorProto, out: Description) -> None:
    reserved = [n for r in enum.reserved_range for n in range(r.start, r.end + 1)]
    out["enums"][f"{prefix}.{enum.name}"] = {
        "values": {str(v.number): v.name for v in enum.value},
        "reserved": sorted(reserved),
    }


def describe(fds: descriptor_pb2.FileDescriptorSet) -> Description:
    """The canonical, JSON-serialisable description that the lock file stores."""
    out: Description = {"messages": {}, "enums": {}, "services": {}}
    for file in fds.file:
        for msg in file.message_type:
            _describe_message(file.package, msg, out)
        for enum in file.enum_type:
            _describe_enum(file.package, enum, out)
        for service in file.service:
            out["services"][f"{file.package}.{service.name}"] = {
                "rpcs": {
                    m.name: {
                        "input": m.input_type.lstrip("."),
                        "output": m.output_type.lstrip("."),
                        "client_streaming": m.client_streaming,
                        "server_streaming": m.server_streaming,
                    }
                    for m in service.method
                }
            }
    return out


def breaking_changes(old: Description, new: Description) -> list[str]:
    """Every way ``new`` would break a client compiled against ``old``."""
    problems: list[str] = []
    for name, old_msg in old["messages"].items():
        new_msg = new["messages"].get(name)
        if new_msg is None:
            problems.append(f"message {name} was removed")
            continue
        for number, old_field in old_msg["fields"].items():
            new_field = new_msg["fields"].get(number)
            if new_field is None:
                if int(number) not in new_msg["reserved"]:
                    problems.append(f"{name}: field {number} ({old_field['name']}) removed without reserving it")
            elif new_field != old_field:
                problems.append(f"{name}: field {number} changed from {old_field} to {new_field}")
    for name, old_enum in old["enums"].items():
        new_enum = new["enums"].get(name)
        if new_enum is None:
            problems.append(f"enum {name} was removed")
            continue
        for number, value in old_enum["values"].items():
            new_value = new_enum["values"].get(number)
            if new_value is None and int(number) not in new_enum["reserved"]:
                problems.append(f"{name}: value {number} ({value}) removed without reserving it")
            elif new_value is not None and new_value != value:
                problems.append(f"{name}: value {number} renamed from {value} to {new_value}")
    for name, old_service in old["services"].items():
        new_service = new["services"].get(name)
        if new_service is None:
            problems.append(f"service {name} was removed")
            continue
        for rpc, signature in old_service["rpcs"].items():
            new_signature = new_service["rpcs"].get(rpc)
            if new_signature is None:
                problems.append(f"{name}.{rpc} was removed")
            elif new_signature != signature:
                problems.append(f"{name}.{rpc} changed from {signature} to {new_signature}")
    return problems


def _lint_enum(where: str, enum: descriptor_pb2.EnumDescriptorProto) -> list[str]:
    problems = []
    if not _PASCAL.match(enum.name):
        problems.append(f"{where}: enum {enum.name} is not PascalCase")
    prefix = re.sub(r"(?<!^)(?=[A-Z])", "_", enum.name).upper() + "_"
    for value in enum.value:
        if not (_UPPER_SNAKE.match(value.name) and value.name.startswith(prefix)):
            problems.append(f"{where}: enum value {value.name} should be UPPER_SNAKE prefixed {prefix}")
    zero = next((v for v in enum.value if v.number == 0), None)
    if zero is None or not zero.name.endswith(("_UNSPECIFIED", "_UNKNOWN")):
        problems.append(f"{where}: enum {enum.name} needs a zero value named {prefix}UNSPECIFIED (or _UNKNOWN)")
    return problems


def _lint_message(where: str, msg: descriptor_pb2.DescriptorProto) -> list[str]:
    problems = []
    if not _PASCAL.match(msg.name):
        problems.append(f"{where}: message {msg.name} is not PascalCase")
    for field in msg.field:
        if not _SNAKE.match(field.name):
            problems.append(f"{where}: field {msg.name}.{field.name} is not lower_snake_case")
    for nested in msg.nested_type:
        if not nested.options.map_entry:
            problems.extend(_lint_message(where, nested))
    for enum in msg.enum_type:
        problems.extend(_lint_enum(where, enum))
    return problems


def lint(fds: descriptor_pb2.FileDescriptorSet) -> list[str]:
    """Style rules every Switchboard proto file follows."""
    problems: list[str] = []
    for file in fds.file:
        where = file.name
        if file.syntax != "proto3":
            problems.append(f'{where}: must use syntax = "proto3"')
        if not _PACKAGE.match(file.package):
            problems.append(f"{where}: package {file.package!r} must look like switchboard.<name>.v<N>")
        expected_dir = file.package.replace(".", "/")
        if str(Path(file.name).parent) != expected_dir:
            problems.append(f"{where}: file must live in {expected_dir}/ to match its package")
        for msg in file.message_type:
            problems.extend(_lint_message(where, msg))
        for enum in file.enum_type:
            problems.extend(_lint_enum(where, enum))
        for service in file.service:
            if not _PASCAL.match(service.name):
                problems.append(f"{where}: service {service.name} is not PascalCase")
            problems.extend(
                f"{where}: rpc {service.name}.{m.name} is not PascalCase"
                for m in service.method
                if not _PASCAL.match(m.name)
            )
    return problems


def _buf_problems(buf: Path, protos: Path, against: str | None) -> list[str]:
    if not buf.exists():
        return [f"{buf} is missing: `make setup` installs buf (npm @bufbuild/buf) into .tools/buf"]
    if against is not None and Path(against).is_dir():
        baseline = against
        problems = buf_breaking(buf, protos, Path(against))
    else:
        ref = against or baseline_ref()
        if ref is None:
            print("proto check: no git history here, so no buf baseline; the lock check ran", file=sys.stderr)
            return []
        baseline = f"protos/ at {ref[:12]}"
        problems = check_against_git(buf, protos, ref)
    if not problems:
        print(f"proto check: buf breaking (FILE rules) finds nothing against {baseline}")
    return problems


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--protos", type=Path, default=DEFAULT_PROTOS)
    parser.add_argument("--lock", type=Path, default=DEFAULT_LOCK)
    parser.add_argument("--update-lock", action="store_true", help="record additive changes in the lock")
    parser.add_argument("--buf", type=Path, help="also run `buf breaking` with this buf binary")
    parser.add_argument(
        "--against", help="buf's baseline: a git ref or a directory (default: the merge-base with main)"
    )
    args = parser.parse_args(argv)

    fds = compile_protos(args.protos)
    problems = lint(fds)
    current = describe(fds)
    locked = json.loads(args.lock.read_text()) if args.lock.exists() else None
    if locked is not None:
        problems.extend(f"BREAKING: {p}" for p in breaking_changes(locked, current))
    if args.buf is not None:
        problems.extend(f"BREAKING (buf): {p}" for p in _buf_problems(args.buf, args.protos, args.against))
    for problem in problems:
        print(f"proto check: {problem}", file=sys.stderr)
    if problems:
        return 1
    if args.update_lock or locked is None:
        args.lock.write_text(json.dumps(current, indent=1, sort_keys=True) + "\n")
        print(f"proto check: lock written to {args.lock}")
    elif locked != current:
        print(
            "proto check: additive changes not yet in the lock; run `make proto-lock` and commit it",
            file=sys.stderr,
        )
        return 1
    else:
        print(f"proto check: {len(fds.file)} files lint clean, no breaking changes against {args.lock.name}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
