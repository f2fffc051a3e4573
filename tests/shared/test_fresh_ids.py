import os
import uuid

from shared_schemas import fresh_ids, request_meta


def test_ids_are_unique_well_formed_request_ids() -> None:
    ids = [request_meta.new_request_id() for _ in range(20_000)]
    assert len(set(ids)) == len(ids)
    assert all(len(i) == 32 and int(i, 16) >= 0 for i in ids)
    assert all(request_meta.valid_request_id(i) for i in ids[:100])


def test_row_ids_are_version_4_uuids() -> None:
    ids = {fresh_ids.new_uuid() for _ in range(1000)}
    assert len(ids) == 1000
    assert {i.version for i in ids} == {4}
    assert {i.variant for i in ids} == {uuid.RFC_4122}


def test_a_forked_child_never_repeats_its_parents_sequence() -> None:
    fresh_ids.new_hex_id()  # the parent's source exists before the fork
    read, write = os.pipe()
    pid = os.fork()
    if pid == 0:  # the child: its next ids, to the parent
        os.write(write, "".join(fresh_ids.new_hex_id() for _ in range(4)).encode())
        os._exit(0)
    os.close(write)
    os.waitpid(pid, 0)
    child = os.read(read, 4096).decode()
    os.close(read)
    parent = "".join(fresh_ids.new_hex_id() for _ in range(4))
    assert len(child) == len(parent) == 128
    assert child != parent
