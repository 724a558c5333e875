"""Google's official `google-genai` SDK, which nobody here wrote, against the emulator's
Gemini route: tier sizes, usage, edits with inline images, a blocked prompt, and Gemini's
errors (a wrong key, an unknown model, a bad aspect ratio)."""

import io
import struct

import pytest
from google import genai
from google.genai import errors, types

from fourk_procs import emulator

KEY = "gemini-sdk-test"


def png_dims(data: bytes):
    assert data[:8] == b"\x89PNG\r\n\x1a\n", "not a PNG"
    return struct.unpack(">II", data[16:24])


@pytest.fixture(scope="module")
def root():
    with emulator("--require-key", KEY, "--moderation-block-words", "forbidden") as base:
        yield base.removesuffix("/v1")


_CLIENTS = []


def client(root, key=KEY, version="v1beta"):
    # Kept alive for the session: a google-genai Client closes its connection pool when it
    # is collected, which can happen before a call on a temporary returns.
    c = genai.Client(api_key=key, http_options=types.HttpOptions(base_url=root, api_version=version))
    _CLIENTS.append(c)
    return c


def image_config(ratio, size):
    return types.GenerateContentConfig(
        response_modalities=["IMAGE"], image_config=types.ImageConfig(aspect_ratio=ratio, image_size=size)
    )


def the_image(resp):
    parts = [p for p in resp.candidates[0].content.parts if p.inline_data]
    assert len(parts) == 1
    assert parts[0].inline_data.mime_type == "image/png"
    return parts[0].inline_data.data


def test_the_4k_tier_at_16_9_is_5504x3072(root):
    resp = client(root).models.generate_content(
        model="gemini-3-pro-image-preview", contents="a lighthouse at dawn", config=image_config("16:9", "4K")
    )
    assert png_dims(the_image(resp)) == (5504, 3072)
    assert resp.usage_metadata.candidates_token_count == 2000
    assert resp.candidates[0].finish_reason == types.FinishReason.STOP
    assert resp.model_version == "gemini-3-pro-image"


def test_the_sdk_default_v1_path_and_the_flash_tiers(root):
    resp = client(root, version="v1").models.generate_content(
        model="gemini-3.1-flash-image", contents="a fox", config=image_config("1:8", "512")
    )
    assert png_dims(the_image(resp)) == (192, 1536)
    assert resp.usage_metadata.candidates_token_count == 747


def test_an_edit_with_an_inline_image(root):
    from PIL import Image

    buf = io.BytesIO()
    Image.new("RGB", (800, 600), (200, 40, 40)).save(buf, "PNG")
    resp = client(root).models.generate_content(
        model="gemini-3-pro-image",
        contents=[types.Part.from_bytes(data=buf.getvalue(), mime_type="image/png"), "make it night"],
        config=image_config("4:3", "1K"),
    )
    raw = the_image(resp)
    assert png_dims(raw) == (1200, 896)
    img = Image.open(io.BytesIO(raw)).convert("RGB")
    r, g, b = img.getpixel((40, 450))
    assert r > 150 and g < 100, "the input image is the picture the label is drawn on"


def test_a_blocked_prompt_is_a_200_with_feedback(root):
    resp = client(root).models.generate_content(
        model="gemini-3-pro-image", contents="a forbidden fox", config=image_config("1:1", "1K")
    )
    assert not resp.candidates
    assert resp.prompt_feedback.block_reason == types.BlockedReason.PROHIBITED_CONTENT


def test_gemini_errors(root):
    with pytest.raises(errors.ClientError) as info:
        client(root, key="wrong").models.generate_content(
            model="gemini-3-pro-image", contents="x", config=image_config("1:1", "1K")
        )
    assert info.value.code == 400 and info.value.status == "INVALID_ARGUMENT"
    assert "API key not valid" in info.value.message
    with pytest.raises(errors.ClientError) as info:
        client(root).models.generate_content(model="gemini-9-image", contents="x", config=image_config("1:1", "1K"))
    assert info.value.code == 404 and info.value.status == "NOT_FOUND"
    with pytest.raises(errors.ClientError) as info:
        client(root).models.generate_content(
            model="gemini-3-pro-image", contents="x", config=image_config("7:3", "1K")
        )
    assert info.value.code == 400 and "aspect ratio" in info.value.message
    with pytest.raises(errors.ClientError) as info:
        client(root).models.generate_content(
            model="gemini-3-pro-image", contents="x", config=image_config("1:1", "4k")
        )
    assert "uppercase K" in info.value.message


def test_more_reference_images_than_the_model_takes(root):
    from PIL import Image

    buf = io.BytesIO()
    Image.new("RGB", (64, 64), (10, 120, 10)).save(buf, "PNG")
    part = types.Part.from_bytes(data=buf.getvalue(), mime_type="image/png")
    with pytest.raises(errors.ClientError) as info:
        client(root).models.generate_content(
            model="gemini-3-pro-image", contents=[part] * 15 + ["a collage"], config=image_config("1:1", "1K")
        )
    assert info.value.code == 400 and info.value.status == "INVALID_ARGUMENT"
    assert "at most 14 input images" in info.value.message
