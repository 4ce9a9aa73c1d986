//! The worked examples of `docs/merchant-integration.md`, computed by the code that signs and
//! verifies for real: if the code or the guide changes, one of these fails.

use chrono::DateTime;
use lightspeed_adapters::merchant_auth::{canonical_string, sign_request, verify_request};
use lightspeed_adapters::merchant_webhook::{
    HEADER_ID, HEADER_SIGNATURE, HEADER_TIMESTAMP, VerifiedMessage, WebhookSecret, signature,
    verify,
};
use reqwest::header::HeaderMap;

/// The guide, as committed.
const GUIDE: &str = include_str!("../../../docs/merchant-integration.md");

/// The request signature example.
const CLIENT_SALT: &str = "cs_q8ZtV2mLr5XwK9bN3cHj7PfD1sGy4TaE6uWn0RkQxMv";
const TIMESTAMP: i64 = 1_796_572_800;
const INITIATE_BODY: &str = r#"{"amount":49900,"currency":"INR","order_id":"A-1001","customer":{"name":"Asha Verma","email":"asha@example.com","phone":"919867800451"},"redirect_url":"https://shop.example.com/orders/A-1001","notes":{"cart":"c_42"}}"#;
const INITIATE_SIGNED: &str = "1796572800\nPOST\n/payment/initiate\n";
const INITIATE_SIGNED_HEX: &str = "31 37 39 36 35 37 32 38 30 30 0a 50 4f 53 54 0a 2f 70 61 79 6d 65 6e 74 2f 69 6e 69 74 69 61 74 65 0a";
const INITIATE_SIGNATURE: &str = "7fb379700468bfb6ca76059962a4ae7cfc2e670629b4a79d95c3c37bcfc112ca";
const READ_PATH: &str = "/transaction/01a24c1a-960a-746b-9707-2fe7a2dc9cce";
const READ_SIGNATURE: &str = "84fc7030409b4c8334f3bb33dbe8b55085bdc96dcc6cf6ad96f73b1ec1a5f76d";

/// The webhook example.
const WEBHOOK_SECRET: &str = "whsec_P0+5dfdRMqbvB7EzkrKDUHj17uyfsUu3";
const WEBHOOK_ID: &str = "01a24c1a-b8aa-7669-84fd-26cc1de5848b";
const WEBHOOK_TIMESTAMP: i64 = 1_796_573_149;
const WEBHOOK_BODY: &str = r#"{"data":{"amount":49900,"commission":1747,"currency":"INR","gateway_id":"01a24c1a-81c7-7653-9a5d-8f873f89fd10","initiated_at":"2026-12-06T16:05:40.515076319Z","late_success":false,"notes":{"cart":"c_42"},"order_id":"A-1001","provider":"sandbox","psp_payment_id":"sbp_76528673f7e19d3835","status":"succeeded","transaction_id":"01a24c1a-960a-746b-9707-2fe7a2dc9cce"},"timestamp":"2026-12-06T16:05:49.354294030Z","type":"payment.succeeded"}"#;
const WEBHOOK_SIGNATURE: &str = "v1,MaGN/c8SAn83Vd5iZZxouKdUbJ7m+cL/Pw4Zy7HTZ78=";

fn assert_in_guide(text: &str) {
    assert!(
        GUIDE.contains(text),
        "docs/merchant-integration.md no longer shows {text:?}"
    );
}

#[test]
fn the_guide_signs_its_initiation_example_as_the_server_does() {
    let message = canonical_string(
        TIMESTAMP,
        "POST",
        "/payment/initiate",
        INITIATE_BODY.as_bytes(),
    );
    assert_eq!(message.len(), 250);
    assert_eq!(INITIATE_BODY.len(), 216);
    let head = &message[..INITIATE_SIGNED.len()];
    assert_eq!(head, INITIATE_SIGNED.as_bytes());
    let head_hex: Vec<String> = head.iter().map(|b| format!("{b:02x}")).collect();
    assert_eq!(head_hex.join(" "), INITIATE_SIGNED_HEX);

    let signature = sign_request(
        CLIENT_SALT.as_bytes(),
        TIMESTAMP,
        "POST",
        "/payment/initiate",
        INITIATE_BODY.as_bytes(),
    );
    assert_eq!(signature, INITIATE_SIGNATURE);
    let now = DateTime::from_timestamp(TIMESTAMP, 0).expect("a valid instant");
    let verified = verify_request(
        CLIENT_SALT.as_bytes(),
        &TIMESTAMP.to_string(),
        INITIATE_SIGNATURE,
        "POST",
        "/payment/initiate",
        INITIATE_BODY.as_bytes(),
        now,
    );
    assert_eq!(verified, Ok(()));

    let signed_text = String::from_utf8(message).expect("the example is text");
    for shown in [
        CLIENT_SALT,
        INITIATE_BODY,
        INITIATE_SIGNED_HEX,
        INITIATE_SIGNATURE,
        signed_text.as_str(),
    ] {
        assert_in_guide(shown);
    }
}

#[test]
fn the_guide_signs_its_read_example_as_the_server_does() {
    let signature = sign_request(CLIENT_SALT.as_bytes(), TIMESTAMP, "GET", READ_PATH, b"");
    assert_eq!(signature, READ_SIGNATURE);
    let signed = format!("{TIMESTAMP}\\nGET\\n{READ_PATH}\\n");
    assert_in_guide(&signed);
    assert_in_guide(READ_SIGNATURE);
}

#[test]
fn the_guide_webhook_verifies_with_the_standard_webhooks_verifier() {
    let secret = WebhookSecret::parse(WEBHOOK_SECRET).expect("a whsec_ secret");
    assert_eq!(
        signature(
            &secret,
            WEBHOOK_ID,
            WEBHOOK_TIMESTAMP,
            WEBHOOK_BODY.as_bytes()
        ),
        WEBHOOK_SIGNATURE
    );
    let mut headers = HeaderMap::new();
    headers.insert(HEADER_ID, WEBHOOK_ID.parse().expect("ASCII"));
    headers.insert(HEADER_TIMESTAMP, WEBHOOK_TIMESTAMP.into());
    headers.insert(HEADER_SIGNATURE, WEBHOOK_SIGNATURE.parse().expect("ASCII"));
    let now = DateTime::from_timestamp(WEBHOOK_TIMESTAMP, 0).expect("a valid instant");
    assert_eq!(
        verify(&secret, &headers, WEBHOOK_BODY.as_bytes(), now),
        Ok(VerifiedMessage {
            id: WEBHOOK_ID.to_owned(),
            timestamp: WEBHOOK_TIMESTAMP,
        })
    );
    assert_eq!(WEBHOOK_BODY.len(), 437);
    for shown in [
        WEBHOOK_SECRET,
        WEBHOOK_ID,
        WEBHOOK_BODY,
        WEBHOOK_SIGNATURE,
        &WEBHOOK_TIMESTAMP.to_string(),
    ] {
        assert_in_guide(shown);
    }
}
