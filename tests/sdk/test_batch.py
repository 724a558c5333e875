"""The Batch API through the official `openai` SDK against fourk's emulator: upload a JSONL
file, create a batch, poll it to completion, download the output and error files and decode
every image."""

import base64
import io
import json
import struct
import time

import openai
import pytest


def png_dims(data: bytes):
    assert data[:8] == b"\x89PNG\r\n\x1a\n", "not a PNG"
    return struct.unpack(">II", data[16:24])


def client(url):
    return openai.OpenAI(base_url=url, api_key="sk-sdk-test", max_retries=0)


def line(custom_id, **body):
    return {
        "custom_id": custom_id,
        "method": "POST",
        "url": "/v1/images/generations",
        "body": {"model": "gpt-image-2", **body},
    }


def upload(c, lines):
    data = "\n".join(json.dumps(l) for l in lines).encode()
    return c.files.create(file=("jobs.jsonl", io.BytesIO(data)), purpose="batch")


def wait(c, batch_id, timeout=120):
    deadline = time.monotonic() + timeout
    while True:
        batch = c.batches.retrieve(batch_id)
        if batch.status in ("completed", "failed", "expired", "cancelled"):
            return batch
        assert time.monotonic() < deadline, f"batch still {batch.status}"
        time.sleep(0.1)


def test_batch_of_images_end_to_end(emulator_url):
    c = client(emulator_url)
    f = upload(
        c,
        [
            line("wide", prompt="a lighthouse", size="1536x1024", quality="low"),
            line("square", prompt="a fox", size="1024x1024", quality="low"),
            line("bad", prompt="x", size="1000x1000"),
        ],
    )
    assert f.purpose == "batch"
    assert f.id.startswith("file-")
    assert c.files.retrieve(f.id).bytes == f.bytes

    batch = c.batches.create(
        input_file_id=f.id,
        endpoint="/v1/images/generations",
        completion_window="24h",
        metadata={"suite": "sdk"},
    )
    assert batch.status == "validating"
    assert batch.metadata == {"suite": "sdk"}

    done = wait(c, batch.id)
    assert done.status == "completed"
    assert done.request_counts.total == 3
    assert done.request_counts.completed == 2
    assert done.request_counts.failed == 1
    assert done.completed_at >= done.in_progress_at >= done.created_at

    out = [json.loads(l) for l in c.files.content(done.output_file_id).text.splitlines()]
    dims = {}
    for l in out:
        body = l["response"]["body"]
        assert l["response"]["status_code"] == 200
        assert body["usage"]["output_tokens"] > 0
        dims[l["custom_id"]] = png_dims(base64.b64decode(body["data"][0]["b64_json"]))
    assert dims == {"wide": (1536, 1024), "square": (1024, 1024)}

    errors = [json.loads(l) for l in c.files.content(done.error_file_id).text.splitlines()]
    assert [e["custom_id"] for e in errors] == ["bad"]
    assert errors[0]["response"]["status_code"] == 400
    assert errors[0]["response"]["body"]["error"]["param"] == "size"

    listed = c.batches.list(limit=100)
    assert batch.id in [b.id for b in listed.data]


def test_cancel_a_finished_batch_and_unknown_ids(emulator_url):
    c = client(emulator_url)
    f = upload(c, [line("one", prompt="x", size="1024x1024", quality="low")])
    batch = c.batches.create(input_file_id=f.id, endpoint="/v1/images/generations", completion_window="24h")
    assert wait(c, batch.id).status == "completed"
    with pytest.raises(openai.ConflictError):
        c.batches.cancel(batch.id)
    with pytest.raises(openai.NotFoundError):
        c.batches.retrieve("batch_does_not_exist")
    with pytest.raises(openai.NotFoundError):
        c.files.retrieve("file-does-not-exist")


def test_a_file_that_is_not_jsonl_is_refused(emulator_url):
    c = client(emulator_url)
    with pytest.raises(openai.BadRequestError) as info:
        c.files.create(file=("jobs.jsonl", io.BytesIO(b'{"custom_id": "a"}\nnot json\n')), purpose="batch")
    assert "line 1" in info.value.message or "line 2" in info.value.message
