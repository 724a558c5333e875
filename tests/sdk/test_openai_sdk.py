"""The official `openai` SDK, which nobody here wrote, against fourk's emulator."""

import base64
import struct

import openai
import pytest


def png_dims(data: bytes):
    assert data[:8] == b"\x89PNG\r\n\x1a\n", "not a PNG"
    assert data[12:16] == b"IHDR"
    return struct.unpack(">II", data[16:24])


def client(url, key="sk-sdk-test"):
    return openai.OpenAI(base_url=url, api_key=key, max_retries=0)


def test_generate_4k_png(emulator_url):
    resp = client(emulator_url).images.generate(
        model="gpt-image-2", prompt="a lighthouse at dawn", size="3840x2160"
    )
    raw = base64.b64decode(resp.data[0].b64_json)
    assert png_dims(raw) == (3840, 2160)
    assert resp.size == "3840x2160"
    assert resp.output_format == "png"
    assert resp.usage.output_tokens > 0
    assert resp.usage.total_tokens == resp.usage.input_tokens + resp.usage.output_tokens


def test_bad_size_raises_bad_request_with_param(emulator_url):
    with pytest.raises(openai.BadRequestError) as info:
        client(emulator_url).images.generate(model="gpt-image-2", prompt="x", size="1920x1080")
    err = info.value
    assert err.status_code == 400
    assert err.param == "size"
    assert err.code == "invalid_value"
    assert "divisible by 16" in err.message
    assert err.request_id


def test_wrong_key_is_authentication_error(emulator_url):
    with pytest.raises(openai.AuthenticationError):
        client(emulator_url, key="sk-wrong").images.generate(model="gpt-image-2", prompt="x", size="1024x1024")


def test_jpeg_with_compression(emulator_url):
    resp = client(emulator_url).images.generate(
        model="gpt-image-2",
        prompt="portrait of a cat",
        size="1024x1536",
        output_format="jpeg",
        output_compression=60,
        quality="low",
    )
    raw = base64.b64decode(resp.data[0].b64_json)
    assert raw[:3] == b"\xff\xd8\xff"
    assert resp.quality == "low"
