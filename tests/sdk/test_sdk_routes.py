"""Every route the emulator offers, driven by the official `openai` SDK: image edits (one image,
several, with a mask), streamed generations, and the Responses API's image_generation tool
(plain, streamed, and chained with previous_response_id)."""

import base64
import struct
import zlib

import openai


def client(url):
    return openai.OpenAI(base_url=url, api_key="sk-sdk-test", max_retries=0)


def _chunk(kind: bytes, data: bytes) -> bytes:
    return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data) & 0xFFFFFFFF)


def make_png(width: int, height: int, alpha=None) -> bytes:
    """An RGB (or, with `alpha(x, y)`, RGBA) PNG with a colourful pattern."""
    channels = 4 if alpha else 3
    rows = bytearray()
    for y in range(height):
        rows.append(0)
        for x in range(width):
            px = [x * 255 // width, y * 255 // height, 40 if (x // 32 + y // 32) % 2 else 210]
            if alpha:
                px.append(alpha(x, y))
            rows.extend(px)
    header = struct.pack(">IIBBBBB", width, height, 8, 6 if alpha else 2, 0, 0, 0)
    return (
        b"\x89PNG\r\n\x1a\n"
        + _chunk(b"IHDR", header)
        + _chunk(b"IDAT", zlib.compress(bytes(rows)))
        + _chunk(b"IEND", b"")
    )


def decode_png(data: bytes):
    """Check a PNG completely (signature, every chunk's CRC, the pixel data's length) and
    return its (width, height)."""
    assert data[:8] == b"\x89PNG\r\n\x1a\n", "not a PNG"
    pos, idat, dims, channels = 8, b"", None, None
    while pos < len(data):
        (length,) = struct.unpack(">I", data[pos : pos + 4])
        kind, body = data[pos + 4 : pos + 8], data[pos + 8 : pos + 8 + length]
        (crc,) = struct.unpack(">I", data[pos + 8 + length : pos + 12 + length])
        assert zlib.crc32(kind + body) & 0xFFFFFFFF == crc, f"bad CRC in {kind!r}"
        if kind == b"IHDR":
            w, h, depth, colour = struct.unpack(">IIBB", body[:10])
            assert depth == 8
            dims, channels = (w, h), {2: 3, 6: 4, 0: 1, 4: 2}[colour]
        elif kind == b"IDAT":
            idat += body
        elif kind == b"IEND":
            break
        pos += 12 + length
    w, h = dims
    assert len(zlib.decompress(idat)) == h * (1 + w * channels), "pixel data is incomplete"
    return dims


def png_file(name, width=256, height=256, alpha=None):
    return (name, make_png(width, height, alpha), "image/png")


def test_edit_one_image(emulator_url):
    resp = client(emulator_url).images.edit(
        model="gpt-image-2",
        image=png_file("photo.png"),
        prompt="add a red balloon",
        size="1024x1024",
        quality="low",
    )
    assert decode_png(base64.b64decode(resp.data[0].b64_json)) == (1024, 1024)
    assert resp.size == "1024x1024"
    assert resp.usage.input_tokens_details.image_tokens > 0
    assert resp.usage.input_tokens_details.text_tokens > 0


def test_edit_several_images(emulator_url):
    resp = client(emulator_url).images.edit(
        model="gpt-image-2",
        image=[png_file("a.png"), png_file("b.png", 128, 256), png_file("c.png", 256, 128)],
        prompt="combine them into one scene",
        size="1024x1024",
        quality="low",
    )
    assert decode_png(base64.b64decode(resp.data[0].b64_json)) == (1024, 1024)
    one = client(emulator_url).images.edit(
        model="gpt-image-2", image=png_file("a.png"), prompt="x", size="1024x1024", quality="low"
    )
    assert resp.usage.input_tokens_details.image_tokens > one.usage.input_tokens_details.image_tokens


def test_edit_with_mask(emulator_url):
    resp = client(emulator_url).images.edit(
        model="gpt-image-2",
        image=png_file("photo.png"),
        mask=png_file("mask.png", alpha=lambda x, y: 0 if x < 128 else 255),
        prompt="a window on the left",
        size="1024x1024",
        quality="low",
    )
    assert decode_png(base64.b64decode(resp.data[0].b64_json)) == (1024, 1024)


def test_edit_mask_of_another_size_is_a_bad_request(emulator_url):
    try:
        client(emulator_url).images.edit(
            model="gpt-image-2",
            image=png_file("photo.png"),
            mask=png_file("mask.png", 128, 128, alpha=lambda x, y: 0),
            prompt="x",
        )
    except openai.BadRequestError as err:
        assert err.param == "mask"
        assert "same dimensions" in err.message
    else:
        raise AssertionError("a mismatched mask was accepted")


def test_generate_stream_with_partial_images(emulator_url):
    stream = client(emulator_url).images.generate(
        model="gpt-image-2",
        prompt="a paper boat on a pond",
        size="1024x1024",
        quality="low",
        stream=True,
        partial_images=2,
    )
    events = list(stream)
    assert [e.type for e in events] == [
        "image_generation.partial_image",
        "image_generation.partial_image",
        "image_generation.completed",
    ]
    assert [e.partial_image_index for e in events[:2]] == [0, 1]
    for e in events:
        assert decode_png(base64.b64decode(e.b64_json)) == (1024, 1024)
    assert events[2].usage.output_tokens > 0


def test_responses_image_generation_tool(emulator_url):
    resp = client(emulator_url).responses.create(
        model="gpt-5",
        input="a lighthouse at dawn",
        tools=[{"type": "image_generation", "model": "gpt-image-2", "size": "1024x1024", "quality": "low"}],
        tool_choice={"type": "image_generation"},
    )
    assert resp.status == "completed"
    calls = [o for o in resp.output if o.type == "image_generation_call"]
    assert len(calls) == 1 and calls[0].status == "completed"
    assert decode_png(base64.b64decode(calls[0].result)) == (1024, 1024)
    assert calls[0].size == "1024x1024"
    assert resp.tool_usage.image_gen.output_tokens > 0


def test_responses_stream(emulator_url):
    stream = client(emulator_url).responses.create(
        model="gpt-5",
        input=[{"role": "user", "content": [{"type": "input_text", "text": "a fox in the snow"}]}],
        tools=[{"type": "image_generation", "model": "gpt-image-2", "size": "1024x1024", "quality": "low",
                "partial_images": 2}],
        stream=True,
    )
    events = list(stream)
    types = [e.type for e in events]
    assert types[0] == "response.created"
    assert types[-1] == "response.completed"
    partials = [e for e in events if e.type == "response.image_generation_call.partial_image"]
    assert [p.partial_image_index for p in partials] == [0, 1]
    for p in partials:
        assert decode_png(base64.b64decode(p.partial_image_b64)) == (1024, 1024)
    assert types.index("response.image_generation_call.completed") > types.index(
        "response.image_generation_call.partial_image"
    )
    assert [e.sequence_number for e in events] == list(range(len(events)))
    final = events[-1].response
    assert decode_png(base64.b64decode(final.output[0].result)) == (1024, 1024)


def test_responses_previous_response_id_chain(emulator_url):
    c = client(emulator_url)
    tools = [{"type": "image_generation", "model": "gpt-image-2", "size": "1024x1024", "quality": "low"}]
    first = c.responses.create(model="gpt-5", input="a red bicycle", tools=tools)
    second = c.responses.create(model="gpt-5", input="make it blue", tools=tools, previous_response_id=first.id)
    assert second.previous_response_id == first.id
    call = second.output[0]
    assert call.action == "edit"
    assert call.result != first.output[0].result
    assert decode_png(base64.b64decode(call.result)) == (1024, 1024)
    try:
        c.responses.create(model="gpt-5", input="x", tools=tools, previous_response_id="resp_unknown")
    except openai.NotFoundError as err:
        assert "Previous response with id 'resp_unknown' not found." in err.message
    else:
        raise AssertionError("an unknown previous_response_id was accepted")


def test_edit_several_images_with_a_mask(emulator_url):
    resp = client(emulator_url).images.edit(
        model="gpt-image-2",
        image=[png_file("room.png"), png_file("lamp.png", 128, 128)],
        mask=png_file("mask.png", alpha=lambda x, y: 0 if y < 96 else 255),
        prompt="hang the lamp from the ceiling",
        size="1536x1024",
        quality="low",
    )
    assert decode_png(base64.b64decode(resp.data[0].b64_json)) == (1536, 1024)
    assert resp.size == "1536x1024"
    assert resp.usage.input_tokens_details.image_tokens > 0


def test_edit_stream_with_partial_images(emulator_url):
    stream = client(emulator_url).images.edit(
        model="gpt-image-2",
        image=png_file("photo.png"),
        prompt="add a kite in the sky",
        size="1024x1024",
        quality="low",
        stream=True,
        partial_images=1,
    )
    events = list(stream)
    assert [e.type for e in events] == ["image_edit.partial_image", "image_edit.completed"]
    for e in events:
        assert decode_png(base64.b64decode(e.b64_json)) == (1024, 1024)
    assert events[-1].usage.input_tokens_details.image_tokens > 0


def test_stream_error_event_raises(emulator_url):
    stream = client(emulator_url).images.generate(
        model="gpt-image-2",
        prompt="a kite [fourk:stream-error]",
        size="1024x1024",
        quality="low",
        stream=True,
        partial_images=1,
    )
    seen = []
    try:
        for event in stream:
            seen.append(event.type)
    except openai.APIError as err:
        assert "error while processing" in str(err)
    else:
        raise AssertionError(f"the error event was not raised: {seen}")
    assert seen == ["image_generation.partial_image"]


def test_responses_with_transparent_background_has_alpha(emulator_url):
    resp = client(emulator_url).responses.create(
        model="gpt-5",
        input="a glass marble",
        tools=[{"type": "image_generation", "model": "gpt-image-2", "size": "1024x1024", "quality": "low",
                "background": "transparent"}],
        tool_choice={"type": "image_generation"},
    )
    call = resp.output[0]
    assert call.background == "transparent"
    data = base64.b64decode(call.result)
    assert decode_png(data) == (1024, 1024)
    # Colour type 6: RGBA.
    assert data[25] == 6
