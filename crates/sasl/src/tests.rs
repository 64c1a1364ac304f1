//! Exchange-level tests: the published vectors, channel binding, downgrade protection,
//! unknown users, malformed input, PLAIN and EXTERNAL, and property tests.

use base64::Engine;
use base64::engine::general_purpose::STANDARD as B64;

use crate::client::{ClientChannelBinding, ClientError, ScramClient, plain_initial_response};
use crate::{
    ChannelBindingType, ChannelBindings, Failure, Hash, Mechanism, ScramCredentials, ServerContext,
    ServerSession, Step,
};

const SECRET: [u8; 32] = [7; 32];
const EXPORTER: &[u8] = b"exporter data of this connection";
const END_POINT: &[u8] = b"certificate hash of this server";

fn scram(hash: Hash, plus: bool) -> Mechanism {
    Mechanism::Scram { hash, plus }
}

fn ctx(offered: Vec<Mechanism>) -> ServerContext {
    ServerContext {
        offered,
        channel_bindings: ChannelBindings::default(),
        offered_cb_types: Vec::new(),
        secret: SECRET,
    }
}

/// A TLS connection offering every SCRAM mechanism, both channel-binding types and PLAIN.
fn ctx_tls() -> ServerContext {
    let mut offered: Vec<Mechanism> = Hash::ALL
        .into_iter()
        .flat_map(|h| [scram(h, true), scram(h, false)])
        .collect();
    offered.push(Mechanism::Plain);
    ServerContext {
        offered,
        channel_bindings: ChannelBindings {
            tls_exporter: Some(EXPORTER.to_vec()),
            tls_server_end_point: Some(END_POINT.to_vec()),
        },
        offered_cb_types: vec![
            ChannelBindingType::TlsExporter,
            ChannelBindingType::TlsServerEndPoint,
        ],
        secret: SECRET,
    }
}

fn creds(hash: Hash, password: &str) -> ScramCredentials {
    ScramCredentials::derive_with_salt(hash, password, b"a fixed salt", 4096).unwrap()
}

fn challenge(step: Result<Step, Failure>) -> Vec<u8> {
    match step {
        Ok(Step::Challenge(c)) => c,
        other => panic!("expected a challenge, got {other:?}"),
    }
}

/// Runs a whole SCRAM exchange between `client` and `server`, answering the credential
/// request with `stored`. Returns the server's failure, or the client's check of the
/// server signature.
fn exchange(
    server: &mut ServerSession,
    client: &mut ScramClient,
    stored: Option<ScramCredentials>,
) -> Result<Result<(), ClientError>, Failure> {
    let first = client.client_first();
    match server.step(&first)? {
        Step::NeedCredentials { .. } => {}
        other => panic!("expected a credential request, got {other:?}"),
    }
    let server_first = challenge(server.provide_credentials(stored));
    let client_final = match client.handle_server_first(&server_first) {
        Ok(f) => f,
        Err(e) => return Ok(Err(e)),
    };
    match server.step(&client_final)? {
        Step::Success {
            additional_data: Some(v),
            ..
        } => Ok(client.handle_server_final(&v)),
        other => panic!("expected success with a verifier, got {other:?}"),
    }
}

// ---- published vectors -------------------------------------------------------------------

/// RFC 5802 §5: SCRAM-SHA-1, user "user", password "pencil".
#[test]
fn rfc5802_sha1_vector() {
    let salt = B64.decode("QSXCR+Q6sek8bf92").unwrap();
    let stored = ScramCredentials::derive_with_salt(Hash::Sha1, "pencil", &salt, 4096).unwrap();
    let mut server = ServerSession::for_test_vectors(
        scram(Hash::Sha1, false),
        ctx(vec![scram(Hash::Sha1, false)]),
        "3rfcNHYJY1ZVvWVs7j",
        false,
    );
    let mut client = ScramClient::new(Hash::Sha1, "user", "pencil", ClientChannelBinding::None)
        .with_nonce("fyko+d2lbbFgONRv9qkxdawL");

    let first = client.client_first();
    assert_eq!(first, b"n,,n=user,r=fyko+d2lbbFgONRv9qkxdawL");
    assert_eq!(
        server.step(&first),
        Ok(Step::NeedCredentials {
            username: "user".into(),
            authzid: None,
            hash: Hash::Sha1
        })
    );
    let server_first = challenge(server.provide_credentials(Some(stored)));
    assert_eq!(
        server_first,
        b"r=fyko+d2lbbFgONRv9qkxdawL3rfcNHYJY1ZVvWVs7j,s=QSXCR+Q6sek8bf92,i=4096"
    );
    let client_final = client.handle_server_first(&server_first).unwrap();
    assert_eq!(
        client_final,
        b"c=biws,r=fyko+d2lbbFgONRv9qkxdawL3rfcNHYJY1ZVvWVs7j,p=v0X8v3Bz2T0CJGbJQyF0X+HI4Ts="
    );
    assert_eq!(
        server.step(&client_final),
        Ok(Step::Success {
            username: "user".into(),
            authzid: None,
            additional_data: Some(b"v=rmF9pqV8S7suAoZWja4dJRkFsKQ=".to_vec()),
        })
    );
    client
        .handle_server_final(b"v=rmF9pqV8S7suAoZWja4dJRkFsKQ=")
        .unwrap();
}

/// RFC 7677 §3: SCRAM-SHA-256, user "user", password "pencil".
#[test]
fn rfc7677_sha256_vector() {
    let salt = B64.decode("W22ZaJ0SNY7soEsUEjb6gQ==").unwrap();
    let stored = ScramCredentials::derive_with_salt(Hash::Sha256, "pencil", &salt, 4096).unwrap();
    let mut server = ServerSession::for_test_vectors(
        scram(Hash::Sha256, false),
        ctx(vec![scram(Hash::Sha256, false)]),
        "%hvYDpWUa2RaTCAfuxFIlj)hNlF$k0",
        false,
    );
    let mut client = ScramClient::new(Hash::Sha256, "user", "pencil", ClientChannelBinding::None)
        .with_nonce("rOprNGfwEbeRWgbNEkqO");

    let first = client.client_first();
    assert_eq!(first, b"n,,n=user,r=rOprNGfwEbeRWgbNEkqO");
    assert!(matches!(
        server.step(&first),
        Ok(Step::NeedCredentials { .. })
    ));
    let server_first = challenge(server.provide_credentials(Some(stored)));
    assert_eq!(
        server_first,
        b"r=rOprNGfwEbeRWgbNEkqO%hvYDpWUa2RaTCAfuxFIlj)hNlF$k0,s=W22ZaJ0SNY7soEsUEjb6gQ==,i=4096"
    );
    let client_final = client.handle_server_first(&server_first).unwrap();
    assert_eq!(
        client_final,
        b"c=biws,r=rOprNGfwEbeRWgbNEkqO%hvYDpWUa2RaTCAfuxFIlj)hNlF$k0,p=dHzbZapWIk4jUhN+Ute9ytag9zjfMHgsqmmiz7AndVQ="
            .as_slice()
    );
    assert_eq!(
        server.step(&client_final),
        Ok(Step::Success {
            username: "user".into(),
            authzid: None,
            additional_data: Some(b"v=6rriTRBi23WpRR/wtup+mMhUZUn/dB5nLTJRsjl95G4=".to_vec()),
        })
    );
}

/// XEP-0474 §4.3: SCRAM-SHA-1-PLUS with tls-exporter, the `h` attribute, and an
/// extension attribute in the client-final-message.
#[test]
fn xep0474_example() {
    let salt = B64.decode("QSXCR+Q6sek8bf92").unwrap();
    let stored = ScramCredentials::derive_with_salt(Hash::Sha1, "pencil", &salt, 4096).unwrap();
    let context = ServerContext {
        offered: vec![scram(Hash::Sha1, false), scram(Hash::Sha1, true)],
        channel_bindings: ChannelBindings {
            tls_exporter: Some(b"THIS IS FAKE CB DATA".to_vec()),
            tls_server_end_point: Some(b"unused".to_vec()),
        },
        offered_cb_types: vec![
            ChannelBindingType::TlsServerEndPoint,
            ChannelBindingType::TlsExporter,
        ],
        secret: SECRET,
    };
    let mut server = ServerSession::for_test_vectors(
        scram(Hash::Sha1, true),
        context,
        "a09117a6-ac50-4f2f-93f1-93799c2bddf6",
        true,
    );
    assert!(matches!(
        server.step(b"p=tls-exporter,,n=user,r=12C4CD5C-E38E-4A98-8F6D-15C38F51CCC6"),
        Ok(Step::NeedCredentials { .. })
    ));
    let server_first = challenge(server.provide_credentials(Some(stored)));
    assert_eq!(
        String::from_utf8(server_first).unwrap(),
        "r=12C4CD5C-E38E-4A98-8F6D-15C38F51CCC6a09117a6-ac50-4f2f-93f1-93799c2bddf6,\
         s=QSXCR+Q6sek8bf92,i=4096,h=G6k/rBLDqgOhRRaCuuatSDFkJ08="
    );
    let client_final = "c=cD10bHMtZXhwb3J0ZXIsLFRISVMgSVMgRkFLRSBDQiBEQVRB,\
        r=12C4CD5C-E38E-4A98-8F6D-15C38F51CCC6a09117a6-ac50-4f2f-93f1-93799c2bddf6,\
        x=19C6532F-1CF4-4A27-A18D-DC9CEA41BBB3,p=M/SIDjT+dfcxUh89jZEypRvFxB4=";
    assert_eq!(
        server.step(client_final.as_bytes()),
        Ok(Step::Success {
            username: "user".into(),
            authzid: None,
            additional_data: Some(b"v=MQrMPvv7yv4x4Cq4W4Ih25EqS2c=".to_vec()),
        })
    );
}

// ---- round trips -------------------------------------------------------------------------

#[test]
fn sha512_round_trip_with_downgrade_protection() {
    let context = ctx_tls();
    let offered = context.offered.clone();
    let cb_types = context.offered_cb_types.clone();
    let mut server = ServerSession::new(scram(Hash::Sha512, false), context);
    let mut client = ScramClient::new(
        Hash::Sha512,
        "juliet",
        "r0m30myr0m30",
        ClientChannelBinding::None,
    )
    .with_downgrade_protection(offered, cb_types);
    let stored = ScramCredentials::derive(Hash::Sha512, "r0m30myr0m30", 4096).unwrap();
    assert_eq!(exchange(&mut server, &mut client, Some(stored)), Ok(Ok(())));
}

#[test]
fn every_hash_round_trips_and_wrong_passwords_fail() {
    for hash in Hash::ALL {
        let mut server = ServerSession::new(scram(hash, false), ctx_tls());
        let mut client = ScramClient::new(hash, "juliet", "secret", ClientChannelBinding::None);
        assert_eq!(
            exchange(&mut server, &mut client, Some(creds(hash, "secret"))),
            Ok(Ok(()))
        );

        let mut server = ServerSession::new(scram(hash, false), ctx_tls());
        let mut client = ScramClient::new(hash, "juliet", "wrong", ClientChannelBinding::None);
        assert_eq!(
            exchange(&mut server, &mut client, Some(creds(hash, "secret"))),
            Err(Failure::NotAuthorized)
        );
    }
}

#[test]
fn authzid_and_escaped_username() {
    let mut server = ServerSession::new(scram(Hash::Sha256, false), ctx_tls());
    let mut client = ScramClient::new(Hash::Sha256, "a,b=c", "pw", ClientChannelBinding::None)
        .with_authzid("juliet@example.com");
    let first = client.client_first();
    assert_eq!(
        String::from_utf8(first.clone())
            .unwrap()
            .split(",r=")
            .next(),
        Some("n,a=juliet@example.com,n=a=2Cb=3Dc")
    );
    assert_eq!(
        server.step(&first),
        Ok(Step::NeedCredentials {
            username: "a,b=c".into(),
            authzid: Some("juliet@example.com".into()),
            hash: Hash::Sha256
        })
    );
    let server_first = challenge(server.provide_credentials(Some(creds(Hash::Sha256, "pw"))));
    let client_final = client.handle_server_first(&server_first).unwrap();
    match server.step(&client_final) {
        Ok(Step::Success {
            username, authzid, ..
        }) => {
            assert_eq!(username, "a,b=c");
            assert_eq!(authzid.as_deref(), Some("juliet@example.com"));
        }
        other => panic!("{other:?}"),
    }
}

#[test]
fn scram_username_is_saslprepped() {
    let mut server = ServerSession::new(scram(Hash::Sha256, false), ctx_tls());
    // Soft hyphen removed, non-ASCII space mapped to SPACE.
    assert_eq!(
        server.step(b"n,,n=ju\xc2\xadliet\xc2\xa0x,r=abc"),
        Ok(Step::NeedCredentials {
            username: "juliet x".into(),
            authzid: None,
            hash: Hash::Sha256
        })
    );
    // A password with a soft hyphen matches the password without it.
    let mut server = ServerSession::new(scram(Hash::Sha256, false), ctx_tls());
    let mut client = ScramClient::new(
        Hash::Sha256,
        "juliet",
        "pen\u{ad}cil",
        ClientChannelBinding::None,
    );
    assert_eq!(
        exchange(
            &mut server,
            &mut client,
            Some(creds(Hash::Sha256, "pencil"))
        ),
        Ok(Ok(()))
    );
}

// ---- channel binding ---------------------------------------------------------------------

#[test]
fn plus_succeeds_with_both_types() {
    for (cb_type, data) in [
        (ChannelBindingType::TlsExporter, EXPORTER),
        (ChannelBindingType::TlsServerEndPoint, END_POINT),
    ] {
        let mut server = ServerSession::new(scram(Hash::Sha256, true), ctx_tls());
        let cb = ClientChannelBinding::Use {
            cb_type,
            data: data.to_vec(),
        };
        let mut client = ScramClient::new(Hash::Sha256, "juliet", "pw", cb);
        assert_eq!(client.mechanism(), scram(Hash::Sha256, true));
        assert_eq!(
            exchange(&mut server, &mut client, Some(creds(Hash::Sha256, "pw"))),
            Ok(Ok(())),
            "{cb_type:?}"
        );
    }
}

#[test]
fn plus_with_wrong_data_fails() {
    for cb_type in [
        ChannelBindingType::TlsExporter,
        ChannelBindingType::TlsServerEndPoint,
    ] {
        let mut server = ServerSession::new(scram(Hash::Sha256, true), ctx_tls());
        let cb = ClientChannelBinding::Use {
            cb_type,
            data: b"what a man in the middle sees".to_vec(),
        };
        let mut client = ScramClient::new(Hash::Sha256, "juliet", "pw", cb);
        assert_eq!(
            exchange(&mut server, &mut client, Some(creds(Hash::Sha256, "pw"))),
            Err(Failure::NotAuthorized)
        );
    }
}

#[test]
fn plus_with_missing_data_or_unoffered_type_fails() {
    // The type is advertised but the TLS layer has no data for it.
    let mut context = ctx_tls();
    context.channel_bindings.tls_exporter = None;
    let mut server = ServerSession::new(scram(Hash::Sha256, true), context);
    assert_eq!(
        server.step(b"p=tls-exporter,,n=juliet,r=abc"),
        Err(Failure::TemporaryAuthFailure)
    );
    // The type was not advertised.
    let mut context = ctx_tls();
    context.offered_cb_types = vec![ChannelBindingType::TlsServerEndPoint];
    let mut server = ServerSession::new(scram(Hash::Sha256, true), context);
    assert_eq!(
        server.step(b"p=tls-exporter,,n=juliet,r=abc"),
        Err(Failure::MalformedRequest)
    );
    // An unknown type.
    let mut server = ServerSession::new(scram(Hash::Sha256, true), ctx_tls());
    assert_eq!(
        server.step(b"p=tls-unique,,n=juliet,r=abc"),
        Err(Failure::MalformedRequest)
    );
}

#[test]
fn y_flag_while_plus_is_offered_is_a_downgrade() {
    let mut server = ServerSession::new(scram(Hash::Sha256, false), ctx_tls());
    assert_eq!(
        server.step(b"y,,n=juliet,r=abc"),
        Err(Failure::NotAuthorized)
    );
    // Without -PLUS on offer, "y" is legitimate.
    let mut server = ServerSession::new(
        scram(Hash::Sha256, false),
        ctx(vec![scram(Hash::Sha256, false)]),
    );
    let mut client = ScramClient::new(
        Hash::Sha256,
        "juliet",
        "pw",
        ClientChannelBinding::SupportedNotUsed,
    );
    assert_eq!(
        exchange(&mut server, &mut client, Some(creds(Hash::Sha256, "pw"))),
        Ok(Ok(()))
    );
}

#[test]
fn p_flag_without_plus_fails() {
    // The server did not offer -PLUS at all: the -PLUS mechanism is refused...
    let plain_ctx = || ctx(vec![scram(Hash::Sha256, false)]);
    let mut server = ServerSession::new(scram(Hash::Sha256, true), plain_ctx());
    assert_eq!(
        server.step(b"p=tls-exporter,,n=juliet,r=abc"),
        Err(Failure::InvalidMechanism)
    );
    // ...and "p" under the non-PLUS mechanism is a syntax violation.
    let mut server = ServerSession::new(scram(Hash::Sha256, false), plain_ctx());
    assert_eq!(
        server.step(b"p=tls-exporter,,n=juliet,r=abc"),
        Err(Failure::MalformedRequest)
    );
    let mut server = ServerSession::new(scram(Hash::Sha256, false), ctx_tls());
    assert_eq!(
        server.step(b"p=tls-exporter,,n=juliet,r=abc"),
        Err(Failure::MalformedRequest)
    );
    // A -PLUS mechanism without "p" is refused too.
    let mut server = ServerSession::new(scram(Hash::Sha256, true), ctx_tls());
    assert_eq!(
        server.step(b"n,,n=juliet,r=abc"),
        Err(Failure::MalformedRequest)
    );
}

#[test]
fn gs2_header_must_be_repeated_exactly() {
    let mut server = ServerSession::new(scram(Hash::Sha256, false), ctx_tls());
    assert!(matches!(
        server.step(b"n,,n=juliet,r=abc"),
        Ok(Step::NeedCredentials { .. })
    ));
    let server_first = String::from_utf8(challenge(
        server.provide_credentials(Some(creds(Hash::Sha256, "pw"))),
    ))
    .unwrap();
    let nonce = server_first
        .split(',')
        .next()
        .unwrap()
        .trim_start_matches("r=");
    // "eSws" is base64 of "y,,": the header changed between the two messages.
    let proof = B64.encode([0u8; 32]);
    let msg = format!("c=eSws,r={nonce},p={proof}");
    assert_eq!(server.step(msg.as_bytes()), Err(Failure::NotAuthorized));
}

// ---- XEP-0474 ----------------------------------------------------------------------------

#[test]
fn downgrade_protection_detects_tampered_lists() {
    let context = ctx_tls();
    // The client saw a list from which SCRAM-SHA-512 and the -PLUS variants were removed.
    let seen = vec![scram(Hash::Sha1, false), scram(Hash::Sha256, false)];
    let mut server = ServerSession::new(scram(Hash::Sha256, false), context.clone());
    let mut client = ScramClient::new(Hash::Sha256, "juliet", "pw", ClientChannelBinding::None)
        .with_downgrade_protection(seen, Vec::new());
    assert_eq!(
        exchange(&mut server, &mut client, Some(creds(Hash::Sha256, "pw"))),
        Ok(Err(ClientError::DowngradeDetected))
    );
    // Same mechanisms, but the channel-binding list was stripped.
    let mut server = ServerSession::new(scram(Hash::Sha256, false), context.clone());
    let mut client = ScramClient::new(Hash::Sha256, "juliet", "pw", ClientChannelBinding::None)
        .with_downgrade_protection(context.offered.clone(), Vec::new());
    assert_eq!(
        exchange(&mut server, &mut client, Some(creds(Hash::Sha256, "pw"))),
        Ok(Err(ClientError::DowngradeDetected))
    );
    // A server that does not send the attribute.
    let mut server =
        ServerSession::for_test_vectors(scram(Hash::Sha256, false), context.clone(), "xyz", false);
    let mut client = ScramClient::new(Hash::Sha256, "juliet", "pw", ClientChannelBinding::None)
        .with_downgrade_protection(context.offered.clone(), context.offered_cb_types.clone());
    assert_eq!(
        exchange(&mut server, &mut client, Some(creds(Hash::Sha256, "pw"))),
        Ok(Err(ClientError::DowngradeProtectionMissing))
    );
}

#[test]
fn tampered_hash_breaks_the_proof() {
    // A man in the middle who rewrites `h` so that the client's check passes changes the
    // AuthMessage, and the server refuses the proof.
    let context = ctx_tls();
    let mut server = ServerSession::new(scram(Hash::Sha256, false), context);
    let seen = vec![scram(Hash::Sha256, false)];
    let forged = crate::downgrade_protection_hash(Hash::Sha256, &seen, &[]);
    let mut client = ScramClient::new(Hash::Sha256, "juliet", "pw", ClientChannelBinding::None)
        .with_downgrade_protection(seen, Vec::new());
    let first = client.client_first();
    assert!(matches!(
        server.step(&first),
        Ok(Step::NeedCredentials { .. })
    ));
    let server_first = String::from_utf8(challenge(
        server.provide_credentials(Some(creds(Hash::Sha256, "pw"))),
    ))
    .unwrap();
    let (head, _) = server_first.split_once(",h=").unwrap();
    let rewritten = format!("{head},h={forged}");
    let client_final = client.handle_server_first(rewritten.as_bytes()).unwrap();
    assert_eq!(server.step(&client_final), Err(Failure::NotAuthorized));
}

// ---- unknown users -----------------------------------------------------------------------

fn server_first_for(username: &str, context: ServerContext, iterations: Option<u32>) -> String {
    let mut server = ServerSession::new(scram(Hash::Sha256, false), context);
    if let Some(i) = iterations {
        server = server.with_fake_iterations(i);
    }
    let first = format!("n,,n={username},r=clientnonce");
    assert!(matches!(
        server.step(first.as_bytes()),
        Ok(Step::NeedCredentials { .. })
    ));
    String::from_utf8(challenge(server.provide_credentials(None))).unwrap()
}

fn salt_and_iterations(server_first: &str) -> (String, String) {
    let mut parts = server_first.split(',').skip(1);
    (
        parts.next().unwrap().to_owned(),
        parts.next().unwrap().to_owned(),
    )
}

#[test]
fn unknown_user_gets_a_stable_fake_salt_and_fails_at_the_end() {
    let a1 = salt_and_iterations(&server_first_for("nobody", ctx_tls(), None));
    let a2 = salt_and_iterations(&server_first_for("nobody", ctx_tls(), None));
    let b = salt_and_iterations(&server_first_for("somebody", ctx_tls(), None));
    assert_eq!(a1, a2);
    assert_ne!(a1.0, b.0);
    assert_eq!(a1.1, "i=4096");
    // The salt has the length of real ones.
    let salt = B64.decode(a1.0.trim_start_matches("s=")).unwrap();
    assert_eq!(salt.len(), crate::SALT_LEN);
    // Case variants that map to one account get one salt.
    assert_eq!(
        salt_and_iterations(&server_first_for("Nobody", ctx_tls(), None)),
        a1
    );
    // Another server secret gives other salts.
    let mut other = ctx_tls();
    other.secret = [9; 32];
    assert_ne!(
        salt_and_iterations(&server_first_for("nobody", other, None)).0,
        a1.0
    );
    // The iteration count can match the server's configuration.
    assert_eq!(
        salt_and_iterations(&server_first_for("nobody", ctx_tls(), Some(10_000))).1,
        "i=10000"
    );

    // The exchange goes on and fails with not-authorized, like a wrong password.
    let mut server = ServerSession::new(scram(Hash::Sha256, false), ctx_tls());
    let mut client = ScramClient::new(Hash::Sha256, "nobody", "pw", ClientChannelBinding::None);
    assert_eq!(
        exchange(&mut server, &mut client, None),
        Err(Failure::NotAuthorized)
    );
}

#[test]
fn credentials_for_the_wrong_hash_or_damaged_are_refused() {
    let mut server = ServerSession::new(scram(Hash::Sha256, false), ctx_tls());
    server.step(b"n,,n=juliet,r=abc").unwrap();
    assert_eq!(
        server.provide_credentials(Some(creds(Hash::Sha1, "pw"))),
        Err(Failure::TemporaryAuthFailure)
    );
    let mut server = ServerSession::new(scram(Hash::Sha256, false), ctx_tls());
    server.step(b"n,,n=juliet,r=abc").unwrap();
    let mut damaged = creds(Hash::Sha256, "pw");
    damaged.stored_key.truncate(3);
    assert_eq!(
        server.provide_credentials(Some(damaged)),
        Err(Failure::TemporaryAuthFailure)
    );
}

// ---- malformed input ---------------------------------------------------------------------

#[test]
fn malformed_client_first_messages() {
    let long = format!("n,,n=juliet,r={}", "a".repeat(crate::MAX_MESSAGE_LEN));
    let cases: Vec<(&[u8], Failure)> = vec![
        (b"", Failure::MalformedRequest),
        (b"\xff\xfe", Failure::MalformedRequest),
        (b"n,,n=juliet,r=abc\0", Failure::MalformedRequest),
        (b"n", Failure::MalformedRequest),
        (b"n,,", Failure::MalformedRequest),
        (b"x,,n=juliet,r=abc", Failure::MalformedRequest),
        (b"p=,,n=juliet,r=abc", Failure::MalformedRequest),
        (b"n,b=x,n=juliet,r=abc", Failure::MalformedRequest),
        (b"n,a=,n=juliet,r=abc", Failure::MalformedRequest),
        (b"n,a=x=40y,n=juliet,r=abc", Failure::MalformedRequest),
        (b"n,,m=ext,n=juliet,r=abc", Failure::MalformedRequest),
        (b"n,,n=,r=abc", Failure::MalformedRequest),
        (b"n,,n=ju=liet,r=abc", Failure::MalformedRequest),
        (b"n,,u=juliet,r=abc", Failure::MalformedRequest),
        (b"n,,n=juliet", Failure::MalformedRequest),
        (b"n,,n=juliet,r=", Failure::MalformedRequest),
        (b"n,,n=juliet,r=a b", Failure::MalformedRequest),
        (b"n,,n=juliet,s=abc", Failure::MalformedRequest),
        (b"n,,n=juliet,r=abc,m=x", Failure::MalformedRequest),
        (b"n,,n=juliet,r=abc,1=x", Failure::MalformedRequest),
        (b"n,,n=juliet,r=abc,", Failure::MalformedRequest),
        (b"n,,n=juliet,r=abc,x=", Failure::MalformedRequest),
        (long.as_bytes(), Failure::MalformedRequest),
        // SASLprep refuses the name: no account can have it.
        (b"n,,n=jul\x07iet,r=abc", Failure::NotAuthorized),
        (b"n,,n=\xc2\xad,r=abc", Failure::NotAuthorized),
    ];
    for (input, expected) in cases {
        let mut server = ServerSession::new(scram(Hash::Sha256, false), ctx_tls());
        assert_eq!(
            server.step(input),
            Err(expected),
            "{:?}",
            String::from_utf8_lossy(input)
        );
        // A failed exchange stays failed.
        assert_eq!(
            server.step(b"n,,n=juliet,r=abc"),
            Err(Failure::MalformedRequest)
        );
    }
    // Escapes and unknown optional extensions are fine.
    let mut server = ServerSession::new(scram(Hash::Sha256, false), ctx_tls());
    assert_eq!(
        server.step(b"n,a=a=2Cb,n=us=3Der,r=abc,x=ext"),
        Ok(Step::NeedCredentials {
            username: "us=er".into(),
            authzid: Some("a,b".into()),
            hash: Hash::Sha256
        })
    );
}

#[test]
fn malformed_client_final_messages() {
    // Each case gets a fresh exchange up to the server-first-message; `{n}` is the nonce.
    let proof = B64.encode([0u8; 32]);
    let cases: Vec<(String, Failure)> = vec![
        (String::new(), Failure::MalformedRequest),
        ("c=biws".into(), Failure::MalformedRequest),
        ("c=biws,r={n}".into(), Failure::MalformedRequest),
        (
            format!("r={{n}},c=biws,p={proof}"),
            Failure::MalformedRequest,
        ),
        (
            format!("c=biws,r={{n}},p={proof},x=1"),
            Failure::MalformedRequest,
        ),
        (
            format!("c=biws,r={{n}},x,p={proof}"),
            Failure::MalformedRequest,
        ),
        (
            format!("c=biws,r={{n}},,p={proof}"),
            Failure::MalformedRequest,
        ),
        ("c=biws,r={n},p=AAAA".into(), Failure::MalformedRequest),
        ("c=biws,r={n},p=!!!!".into(), Failure::IncorrectEncoding),
        (
            format!("c=b!ws,r={{n}},p={proof}"),
            Failure::IncorrectEncoding,
        ),
        (format!("c=biws,r={{n}}X,p={proof}"), Failure::NotAuthorized),
        (format!("c=biws,r=abc,p={proof}"), Failure::NotAuthorized),
        (format!("c=biws,r={{n}},p={proof}"), Failure::NotAuthorized),
        ("c=biws,r={n},p=\u{0}".into(), Failure::MalformedRequest),
    ];
    for (template, expected) in cases {
        let mut server = ServerSession::new(scram(Hash::Sha256, false), ctx_tls());
        server.step(b"n,,n=juliet,r=abc").unwrap();
        let server_first = String::from_utf8(challenge(
            server.provide_credentials(Some(creds(Hash::Sha256, "pw"))),
        ))
        .unwrap();
        let nonce = server_first
            .split(',')
            .next()
            .unwrap()
            .trim_start_matches("r=");
        let msg = template.replace("{n}", nonce);
        assert_eq!(server.step(msg.as_bytes()), Err(expected), "{msg}");
    }
    // Non-UTF-8 in the final message.
    let mut server = ServerSession::new(scram(Hash::Sha256, false), ctx_tls());
    server.step(b"n,,n=juliet,r=abc").unwrap();
    challenge(server.provide_credentials(Some(creds(Hash::Sha256, "pw"))));
    assert_eq!(server.step(b"c=biws,\xff"), Err(Failure::MalformedRequest));
}

#[test]
fn out_of_order_calls() {
    let mut server = ServerSession::new(scram(Hash::Sha256, false), ctx_tls());
    assert_eq!(
        server.provide_credentials(None),
        Err(Failure::TemporaryAuthFailure)
    );
    let mut server = ServerSession::new(scram(Hash::Sha256, false), ctx_tls());
    server.step(b"n,,n=juliet,r=abc").unwrap();
    assert_eq!(
        server.step(b"n,,n=juliet,r=abc"),
        Err(Failure::TemporaryAuthFailure)
    );
    // After success, nothing more is accepted.
    let mut server = ServerSession::new(Mechanism::External, ctx(vec![Mechanism::External]));
    assert!(matches!(server.step(b""), Ok(Step::Success { .. })));
    assert_eq!(server.step(b""), Err(Failure::MalformedRequest));
    assert_eq!(
        server.start_without_initial_response(),
        Err(Failure::MalformedRequest)
    );
}

#[test]
fn no_initial_response() {
    let mut server = ServerSession::new(scram(Hash::Sha256, false), ctx_tls());
    assert_eq!(
        server.start_without_initial_response(),
        Ok(Step::Challenge(Vec::new()))
    );
    let mut client = ScramClient::new(Hash::Sha256, "juliet", "pw", ClientChannelBinding::None);
    assert_eq!(
        exchange(&mut server, &mut client, Some(creds(Hash::Sha256, "pw"))),
        Ok(Ok(()))
    );
    // Not offered.
    let mut server = ServerSession::new(Mechanism::Plain, ctx(vec![]));
    assert_eq!(
        server.start_without_initial_response(),
        Err(Failure::InvalidMechanism)
    );
}

// ---- PLAIN -------------------------------------------------------------------------------

fn plain_server() -> ServerSession {
    ServerSession::new(Mechanism::Plain, ctx_tls())
}

#[test]
fn plain_good_and_bad() {
    let mut server = plain_server();
    let msg = plain_initial_response(None, "juliet", "r0m30");
    assert_eq!(msg, b"\0juliet\0r0m30");
    assert_eq!(
        server.step(&msg),
        Ok(Step::NeedCredentials {
            username: "juliet".into(),
            authzid: None,
            hash: Hash::Sha256
        })
    );
    assert_eq!(
        server.provide_credentials(Some(creds(Hash::Sha256, "r0m30"))),
        Ok(Step::Success {
            username: "juliet".into(),
            authzid: None,
            additional_data: None
        })
    );

    // Any stored hash will do for PLAIN.
    let mut server = plain_server();
    server.step(&msg).unwrap();
    assert!(matches!(
        server.provide_credentials(Some(creds(Hash::Sha512, "r0m30"))),
        Ok(Step::Success { .. })
    ));

    // With an authorization identity.
    let mut server = plain_server();
    let msg = plain_initial_response(Some("juliet@example.com"), "juliet", "r0m30");
    assert!(matches!(
        server.step(&msg),
        Ok(Step::NeedCredentials { authzid: Some(ref a), .. }) if a == "juliet@example.com"
    ));

    // Wrong password.
    let mut server = plain_server();
    server
        .step(&plain_initial_response(None, "juliet", "wrong"))
        .unwrap();
    assert_eq!(
        server.provide_credentials(Some(creds(Hash::Sha256, "r0m30"))),
        Err(Failure::NotAuthorized)
    );

    // Unknown user.
    let mut server = plain_server();
    server
        .step(&plain_initial_response(None, "nobody", "r0m30"))
        .unwrap();
    assert_eq!(
        server.provide_credentials(None),
        Err(Failure::NotAuthorized)
    );
}

#[test]
fn plain_saslprep() {
    // Soft hyphen in the password is mapped to nothing; a non-ASCII space becomes SPACE.
    let mut server = plain_server();
    server
        .step(&plain_initial_response(
            None,
            "jul\u{ad}iet",
            "pen\u{ad}cil",
        ))
        .map(|s| {
            assert!(matches!(s, Step::NeedCredentials { ref username, .. } if username == "juliet"))
        })
        .unwrap();
    assert!(matches!(
        server.provide_credentials(Some(creds(Hash::Sha256, "pencil"))),
        Ok(Step::Success { .. })
    ));
    let mut server = plain_server();
    server
        .step(&plain_initial_response(None, "juliet", "a\u{2003}b"))
        .unwrap();
    assert!(matches!(
        server.provide_credentials(Some(creds(Hash::Sha256, "a b"))),
        Ok(Step::Success { .. })
    ));
    // A password SASLprep refuses never verifies.
    let mut server = plain_server();
    server
        .step(&plain_initial_response(None, "juliet", "a\u{7}"))
        .unwrap();
    assert_eq!(
        server.provide_credentials(Some(creds(Hash::Sha256, "pencil"))),
        Err(Failure::NotAuthorized)
    );
}

#[test]
fn plain_malformed() {
    for input in [
        b"juliet\0pw".as_slice(),
        b"\0juliet\0pw\0extra",
        b"\0\0pw",
        b"\0juliet\0",
        b"",
        b"\0\xff\0pw",
    ] {
        let mut server = plain_server();
        assert_eq!(
            server.step(input),
            Err(Failure::MalformedRequest),
            "{input:?}"
        );
    }
    let mut server = plain_server();
    assert_eq!(
        server.step(b"\0ju\x07liet\0pw"),
        Err(Failure::NotAuthorized)
    );
    // Not offered on this connection (the caller offers PLAIN only over TLS).
    let mut server = ServerSession::new(Mechanism::Plain, ctx(vec![scram(Hash::Sha256, false)]));
    assert_eq!(
        server.step(&plain_initial_response(None, "juliet", "pw")),
        Err(Failure::InvalidMechanism)
    );
}

// ---- EXTERNAL ----------------------------------------------------------------------------

#[test]
fn external() {
    let ext = || ServerSession::new(Mechanism::External, ctx(vec![Mechanism::External]));
    assert_eq!(
        ext().step(b""),
        Ok(Step::Success {
            username: String::new(),
            authzid: None,
            additional_data: None
        })
    );
    assert_eq!(
        ext().step(b"example.net"),
        Ok(Step::Success {
            username: String::new(),
            authzid: Some("example.net".into()),
            additional_data: None
        })
    );
    assert_eq!(ext().step(b"\xff"), Err(Failure::MalformedRequest));
    assert_eq!(ext().step(b"a\0b"), Err(Failure::MalformedRequest));
    let mut s = ext();
    assert_eq!(
        s.start_without_initial_response(),
        Ok(Step::Challenge(Vec::new()))
    );
    assert!(matches!(
        s.step(b""),
        Ok(Step::Success { authzid: None, .. })
    ));
}

// ---- failure conditions ------------------------------------------------------------------

#[test]
fn failure_conditions_and_texts() {
    let all = [
        (Failure::Aborted, "aborted"),
        (Failure::AccountDisabled, "account-disabled"),
        (Failure::CredentialsExpired, "credentials-expired"),
        (Failure::EncryptionRequired, "encryption-required"),
        (Failure::IncorrectEncoding, "incorrect-encoding"),
        (Failure::InvalidAuthzid, "invalid-authzid"),
        (Failure::InvalidMechanism, "invalid-mechanism"),
        (Failure::MalformedRequest, "malformed-request"),
        (Failure::MechanismTooWeak, "mechanism-too-weak"),
        (Failure::NotAuthorized, "not-authorized"),
        (Failure::TemporaryAuthFailure, "temporary-auth-failure"),
    ];
    for (f, condition) in all {
        assert_eq!(f.condition(), condition);
        assert!(!f.text().is_empty());
        assert_eq!(f.to_string(), f.text());
    }
}

// ---- client side -------------------------------------------------------------------------

#[test]
fn client_checks_server_messages() {
    let fresh = || {
        let mut c = ScramClient::new(Hash::Sha256, "juliet", "pw", ClientChannelBinding::None)
            .with_nonce("cnonce");
        c.client_first();
        c
    };
    let mut c = ScramClient::new(Hash::Sha256, "juliet", "pw", ClientChannelBinding::None);
    assert_eq!(
        c.handle_server_first(b"r=x,s=QQ==,i=4096"),
        Err(ClientError::OutOfOrder)
    );
    assert_eq!(
        fresh().handle_server_first(b"r=other,s=QQ==,i=4096"),
        Err(ClientError::NonceMismatch)
    );
    assert_eq!(
        fresh().handle_server_first(b"r=cnonce,s=QQ==,i=4096"),
        Err(ClientError::NonceMismatch)
    );
    assert_eq!(
        fresh().handle_server_first(b"r=cnonceS,s=QQ==,i=1"),
        Err(ClientError::Iterations(1))
    );
    assert_eq!(
        fresh().handle_server_first(b"r=cnonceS,s=QQ==,i=4000000000"),
        Err(ClientError::Iterations(4_000_000_000))
    );
    assert_eq!(
        fresh().handle_server_first(b"m=x,r=cnonceS,s=QQ==,i=4096"),
        Err(ClientError::MandatoryExtension)
    );
    assert!(matches!(
        fresh().handle_server_first(b"r=cnonceS,s=!!,i=4096"),
        Err(ClientError::Malformed(_))
    ));
    assert!(matches!(
        fresh().handle_server_first(b"r=cnonceS,s=QQ==,i=lots"),
        Err(ClientError::Malformed(_))
    ));
    assert!(matches!(
        fresh().handle_server_first(b"r=cnonceS,s=QQ==,i=4096,junk"),
        Err(ClientError::Malformed(_))
    ));

    let mut c = fresh();
    c.handle_server_first(b"r=cnonceS,s=QQ==,i=4096").unwrap();
    assert_eq!(
        c.handle_server_final(b"e=invalid-proof"),
        Err(ClientError::ServerError("invalid-proof".into()))
    );
    assert_eq!(
        c.handle_server_final(format!("v={}", B64.encode([0u8; 32])).as_bytes()),
        Err(ClientError::BadServerSignature)
    );
    assert!(matches!(
        c.handle_server_final(b"v=!!"),
        Err(ClientError::Malformed(_))
    ));
    let fresh_client = ScramClient::new(Hash::Sha1, "u", "p", ClientChannelBinding::None);
    assert_eq!(
        fresh_client.handle_server_final(b"v=AAAA"),
        Err(ClientError::OutOfOrder)
    );
}

#[test]
fn client_debug_hides_secrets() {
    let c = ScramClient::new(
        Hash::Sha256,
        "juliet",
        "hunter2",
        ClientChannelBinding::Use {
            cb_type: ChannelBindingType::TlsExporter,
            data: b"secret-binding".to_vec(),
        },
    );
    let shown = format!("{c:?}");
    assert!(!shown.contains("hunter2"), "{shown}");
    assert!(!shown.contains("secret-binding"), "{shown}");
}

// ---- properties --------------------------------------------------------------------------

mod properties {
    use super::*;
    use proptest::prelude::*;

    fn all_mechanisms() -> Vec<Mechanism> {
        let mut v: Vec<Mechanism> = Hash::ALL
            .into_iter()
            .flat_map(|h| [scram(h, true), scram(h, false)])
            .collect();
        v.push(Mechanism::Plain);
        v.push(Mechanism::External);
        v
    }

    fn mechanism() -> impl Strategy<Value = Mechanism> {
        proptest::sample::select(all_mechanisms())
    }

    /// Inputs that are often close to valid, so that the later states are reached.
    fn message() -> impl Strategy<Value = Vec<u8>> {
        prop_oneof![
            proptest::collection::vec(any::<u8>(), 0..200),
            "[nyp=a-z,0-9A-Z+/=\\-]{0,80}".prop_map(String::into_bytes),
            (
                prop_oneof![
                    Just("n,,"),
                    Just("y,,"),
                    Just("p=tls-exporter,,"),
                    Just("n,a=x,")
                ],
                "[a-z=0-9]{0,10}",
                "[!-~]{0,20}",
                "(,[a-z]=[a-z0-9]{0,5}){0,3}",
            )
                .prop_map(|(h, u, r, e)| format!("{h}n={u},r={r}{e}").into_bytes()),
            (
                "[A-Za-z0-9+/=]{0,12}",
                "[!-~]{0,60}",
                "[A-Za-z0-9+/=]{0,90}",
            )
                .prop_map(|(c, r, p)| format!("c={c},r={r},p={p}").into_bytes()),
        ]
    }

    fn stored() -> impl Strategy<Value = Option<ScramCredentials>> {
        proptest::option::of(
            (
                proptest::sample::select(Hash::ALL.to_vec()),
                0usize..70,
                0u32..3,
            )
                .prop_map(|(hash, key_len, iterations)| ScramCredentials {
                    hash,
                    salt: vec![1, 2, 3],
                    iterations,
                    stored_key: vec![5; key_len],
                    server_key: vec![6; key_len],
                }),
        )
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(512))]

        #[test]
        fn arbitrary_input_never_panics(
            mech in mechanism(),
            start_empty in any::<bool>(),
            a in message(),
            creds in stored(),
            b in message(),
            c in message(),
        ) {
            let mut server = ServerSession::new(mech, ctx_tls());
            if start_empty {
                let _ = server.start_without_initial_response();
            }
            let _ = server.step(&a);
            let _ = server.provide_credentials(creds);
            let _ = server.step(&b);
            let _ = server.step(&c);
        }

        #[test]
        fn arbitrary_client_final_after_a_real_start_never_panics(
            hash in proptest::sample::select(Hash::ALL.to_vec()),
            known in any::<bool>(),
            msg in message(),
        ) {
            let mut server = ServerSession::new(scram(hash, false), ctx_tls());
            server.step(b"n,,n=juliet,r=abc").unwrap();
            let stored = known.then(|| creds(hash, "pw"));
            server.provide_credentials(stored).unwrap();
            let result = server.step(&msg);
            let succeeded = matches!(result, Ok(Step::Success { .. }));
            prop_assert!(!succeeded, "a forged client-final-message was accepted");
        }

        #[test]
        fn arbitrary_server_messages_never_panic_the_client(
            first in message(),
            last in message(),
            protect in any::<bool>(),
        ) {
            let mut client = ScramClient::new(Hash::Sha256, "juliet", "pw", ClientChannelBinding::None);
            if protect {
                client = client.with_downgrade_protection(vec![scram(Hash::Sha256, false)], Vec::new());
            }
            let _ = client.handle_server_final(&last);
            client.client_first();
            let _ = client.handle_server_first(&first);
            let _ = client.handle_server_final(&last);
        }
    }
}
