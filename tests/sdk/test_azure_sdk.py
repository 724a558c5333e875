"""The official `openai` SDK's `AzureOpenAI` client, which nobody here wrote, against the
emulator's Azure OpenAI routes: both URL shapes, the `api-key` header and Entra ID tokens,
deployments, and Azure's errors (a wrong key, an unknown deployment, the content filter)."""

import base64
import io
import struct

import openai
import pytest

from fourk_procs import emulator

KEY = "az-sdk-test"
VERSION = "2025-04-01-preview"


def png_dims(data: bytes):
    assert data[:8] == b"\x89PNG\r\n\x1a\n", "not a PNG"
    return struct.unpack(">II", data[16:24])


@pytest.fixture(scope="module")
def azure_endpoint():
    with emulator(
        "--require-key", KEY, "--deployment", "img-eu=gpt-image-2", "--moderation-block-words", "forbidden"
    ) as base:
        yield base.removesuffix("/v1")


def azure(endpoint, **kw):
    opts = {"api_key": KEY, "api_version": VERSION, "max_retries": 0}
    opts.update(kw)
    return openai.AzureOpenAI(azure_endpoint=endpoint, **opts)


def test_generate_through_a_named_deployment(azure_endpoint):
    # Without azure_deployment the SDK puts the model (the deployment name) in the URL.
    resp = azure(azure_endpoint).images.with_raw_response.generate(
        model="img-eu", prompt="a lighthouse at dawn", size="1536x1024", quality="low"
    )
    assert resp.headers["x-ms-deployment-name"] == "img-eu"
    assert resp.headers["apim-request-id"] == resp.headers["x-request-id"]
    assert "procedural" in resp.headers["x-fourk-emulator"]
    body = resp.parse()
    assert png_dims(base64.b64decode(body.data[0].b64_json)) == (1536, 1024)
    assert body.usage.output_tokens > 0


def test_azure_deployment_argument_and_an_entra_token(azure_endpoint):
    c = openai.AzureOpenAI(
        azure_endpoint=azure_endpoint,
        azure_deployment="gpt-image-2",
        azure_ad_token=KEY,
        api_version=VERSION,
        max_retries=0,
    )
    resp = c.images.generate(model="gpt-image-2", prompt="a fox", size="1024x1024", quality="low")
    assert png_dims(base64.b64decode(resp.data[0].b64_json)) == (1024, 1024)


def test_edit_with_a_mask(azure_endpoint):
    from PIL import Image

    src = io.BytesIO()
    Image.new("RGB", (1024, 1024), (30, 90, 160)).save(src, "PNG")
    mask = io.BytesIO()
    Image.new("RGBA", (1024, 1024), (0, 0, 0, 0)).save(mask, "PNG")
    resp = azure(azure_endpoint).images.edit(
        model="img-eu",
        image=("in.png", src.getvalue(), "image/png"),
        mask=("mask.png", mask.getvalue(), "image/png"),
        prompt="add a moon",
        size="1024x1024",
        quality="low",
    )
    assert png_dims(base64.b64decode(resp.data[0].b64_json)) == (1024, 1024)


def test_the_v1_api_through_the_plain_client(azure_endpoint):
    c = openai.OpenAI(base_url=azure_endpoint + "/openai/v1/", api_key=KEY, max_retries=0)
    resp = c.images.generate(model="img-eu", prompt="a fox", size="1024x1024", quality="low")
    assert png_dims(base64.b64decode(resp.data[0].b64_json)) == (1024, 1024)
    dated = openai.OpenAI(
        base_url=azure_endpoint + "/openai/v1/", api_key=KEY, max_retries=0, default_query={"api-version": VERSION}
    )
    with pytest.raises(openai.BadRequestError) as info:
        dated.images.generate(model="img-eu", prompt="a fox", size="1024x1024")
    assert info.value.body["code"] == "BadRequest"


def test_a_wrong_key_is_azure_s_401(azure_endpoint):
    with pytest.raises(openai.AuthenticationError) as info:
        azure(azure_endpoint, api_key="wrong").images.generate(model="img-eu", prompt="x", size="1024x1024")
    assert info.value.body["code"] == "401"
    assert "Access denied" in info.value.body["message"]


def test_an_unknown_deployment_and_a_missing_version(azure_endpoint):
    with pytest.raises(openai.NotFoundError) as info:
        azure(azure_endpoint).images.generate(model="no-such-deployment", prompt="x", size="1024x1024")
    assert info.value.code == "DeploymentNotFound"
    with pytest.raises(openai.NotFoundError) as info:
        azure(azure_endpoint, api_version="2024-02-01").images.generate(model="img-eu", prompt="x", size="1024x1024")
    assert info.value.body["message"] == "Resource not found"


def test_the_content_filter(azure_endpoint):
    with pytest.raises(openai.BadRequestError) as info:
        azure(azure_endpoint).images.generate(model="img-eu", prompt="a forbidden fox", size="1024x1024")
    body = info.value.body
    assert info.value.code == "content_policy_violation"
    inner = body["inner_error"]
    assert inner["code"] == "ResponsibleAIPolicyViolation"
    assert inner["content_filter_results"]["violence"]["filtered"] is True
