//! The provider as a value: the URL shape and the way the key is sent change with it, and
//! nothing else does.

use fourk_api::{ImageRequest, Size};
use fourk_client::{Auth, Client, Config, Provider};

use crate::server::{Act, KEY, images_body, json, serve};

#[tokio::test]
async fn a_deployment_provider_sends_to_its_url_with_its_key_header() {
    let server = serve(vec![Act::Reply(json("200 OK", "", &images_body("QUJD")))]).await;
    let provider = Provider {
        name: "azure".into(),
        auth: Auth::Header("api-key".into()),
        deployment: Some("gpt-image-2-eu".into()),
        query: vec![("api-version".into(), "2025-04-01-preview".into())],
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
