"""Public and internal RPCs: each contract says who it is for, and each RPC's `audience` option
agrees with the scope its server demands (docs/scopes.md), so the marking cannot drift."""

from __future__ import annotations

import importlib
from pathlib import Path

import pytest
from switchboard.common.v1 import common_pb2

from runtime.auth.scopes import DECLARED, Scope
from tools.scope_table import contract_methods, load_service_declarations

PROTOS = Path(__file__).resolve().parents[2] / "protos"
AUDIENCE_OF_SCOPE = {
    Scope.INTERNAL: common_pb2.AUDIENCE_INTERNAL,
    Scope.ADMIN: common_pb2.AUDIENCE_ADMIN,
    Scope.OPERATE: common_pb2.AUDIENCE_PUBLIC,
    Scope.READ: common_pb2.AUDIENCE_PUBLIC,
}


def audience_of(method: str) -> common_pb2.Audience.ValueType:
    """The `audience` option of ``/pkg.Service/Method`` (unset: public)."""
    service_name, name = method.strip("/").split("/")
    package, _, service = service_name.rpartition(".")
    module = importlib.import_module(f"{package}.{package.split('.')[1]}_pb2")  # switchboard.x.v1.x_pb2
    descriptor = module.DESCRIPTOR.services_by_name[service].methods_by_name[name]
    options = descriptor.GetOptions()
    value: common_pb2.Audience.ValueType = options.Extensions[common_pb2.audience]
    return common_pb2.AUDIENCE_PUBLIC if value == common_pb2.AUDIENCE_UNSPECIFIED else value


@pytest.mark.parametrize("proto", sorted(PROTOS.rglob("*.proto")), ids=lambda p: p.name)
def test_each_contract_opens_with_who_it_is_for(proto: Path) -> None:
    comments = [line for line in proto.read_text().splitlines() if line.startswith("//")]
    assert comments[0].startswith("// Who it is for: "), proto


def test_every_rpcs_audience_matches_the_scope_its_server_demands() -> None:
    load_service_declarations()
    mismatched = {
        method: (common_pb2.Audience.Name(audience_of(method)), str(DECLARED[method]))
        for method in contract_methods()
        if audience_of(method) != AUDIENCE_OF_SCOPE[DECLARED[method]]
    }
    assert mismatched == {}


def test_the_ingest_and_maintenance_rpcs_of_status_are_internal() -> None:
    internal = [m for m in contract_methods() if audience_of(m) == common_pb2.AUDIENCE_INTERNAL]
    assert {m for m in internal if m.startswith("/switchboard.status.v1.")} == {
        "/switchboard.status.v1.StatusService/Ingest",
        "/switchboard.status.v1.StatusService/Resync",
        "/switchboard.status.v1.StatusService/Clear",
    }
