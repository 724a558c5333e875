//! The provider as a value: the URL shape and the way the key is sent change with it, and
//! nothing else does.

use fourk_api::{ImageRequest, Size};
use fourk_client::{Auth, Client, Config, Provider};

use crate::server::{Act, KEY, images_body, json, serve};

#[tokio::test]
async fn a_deployment_provider_sends_to_its_url_with_its_key_header() {
    let server = serve(vec![Act::Reply(json("200 OK", "", &images_body("QUJD")))]).await;
    let provider = Provider {
        auth: Auth::Header("api-key".into()),
        deployment_urls: true,
        deployment: Some("gpt-image-2-eu".into()),
        query: vec![("api-version".into(), "2025-04-01-preview".into())],
        ..Provider::of(fourk_api::ProviderKind::Azure)
    };
    let c = Client::new(
        Config::default()
            .with_base_url(&server.url)
            .with_api_key(KEY)
            .with_provider(provider),
    )
    .unwrap();
    let mut req = ImageRequest::new("gpt-image-2", "a fox");
    req.size = Some(Size::new(1024, 1024));
    let resp = c.generate(&req).await.unwrap();
    assert_eq!(resp.status, 200);
    let sent = server.request(0);
    assert_eq!(
        sent.path,
        "/v1/deployments/gpt-image-2-eu/images/generations?api-version=2025-04-01-preview"
    );
    assert_eq!(sent.header("api-key"), Some(KEY));
    assert_eq!(
        sent.header("authorization"),
        None,
        "the key goes once, in its own header"
    );
    let body: serde_json::Value = serde_json::from_slice(&sent.body).unwrap();
    assert_eq!(
        body["model"], "gpt-image-2-eu",
        "Azure's body names the deployment"
    );
}

#[tokio::test]
async fn extra_headers_go_with_every_request_and_a_token_command_gives_the_bearer() {
    let server = serve(vec![Act::Reply(json("200 OK", "", &images_body("QUJD")))]).await;
    let provider = Provider {
        headers: vec![fourk_client::ExtraHeader {
            name: "X-Gateway-Key".into(),
            value: "gw-1".to_owned().into(),
        }],
        path_prefix: Some("/gw/".into()),
        ..Provider::of(fourk_api::ProviderKind::Compatible)
    };
    let mut config = Config::default()
        .with_base_url(&server.url)
        .with_provider(provider);
    config.token_command = Some(fourk_client::TokenCommand::new("echo tok-abc"));
    let c = Client::new(config).unwrap();
    c.generate(&ImageRequest::new("gpt-image-2", "a fox"))
        .await
        .unwrap();
    let sent = server.request(0);
    assert_eq!(sent.path, "/v1/gw/images/generations");
    assert_eq!(sent.header("x-gateway-key"), Some("gw-1"));
    assert_eq!(sent.header("authorization"), Some("Bearer tok-abc"));
}

#[tokio::test]
async fn the_default_provider_is_openai_with_a_bearer_key() {
    let server = serve(vec![Act::Reply(json("200 OK", "", &images_body("QUJD")))]).await;
    let c = Client::new(Config::default().with_base_url(&server.url).with_api_key(KEY)).unwrap();
    c.generate(&ImageRequest::new("gpt-image-2", "a fox"))
        .await
        .unwrap();
    let sent = server.request(0);
    assert_eq!(sent.path, "/v1/images/generations");
    assert_eq!(
        sent.header("authorization"),
        Some(format!("Bearer {KEY}").as_str())
    );
    assert_eq!(sent.header("api-key"), None);
}
