#![allow(clippy::unwrap_used, clippy::expect_used)] // test helpers may panic: that is a failing test

use super::*;
use serde_json::json;
use tokio::io::{AsyncBufReadExt, AsyncWriteExt, BufReader};
use tokio::net::TcpListener;
use tokio::sync::oneshot;

/// What the fake relay was told.
#[derive(Debug, Default)]
struct Captured {
    mail_from: Vec<String>,
    rcpt_to: Vec<String>,
    /// The message as sent after DATA, without the final dot.
    data: String,
}

/// A one-connection SMTP relay on 127.0.0.1 that speaks just enough SMTP, answers RCPT
/// with `rcpt`, and hands over what it heard when the client is gone.
async fn relay(rcpt: &'static str) -> (u16, oneshot::Receiver<Captured>) {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let port = listener.local_addr().unwrap().port();
    let (tx, rx) = oneshot::channel();
    tokio::spawn(async move {
        let (socket, _) = listener.accept().await.unwrap();
        let (read, mut write) = socket.into_split();
        let mut lines = BufReader::new(read).lines();
        let mut captured = Captured::default();
        write.write_all(b"220 fake ESMTP\r\n").await.unwrap();
        while let Ok(Some(line)) = lines.next_line().await {
            let verb = line.split(' ').next().unwrap_or("").to_ascii_uppercase();
            let reply = match verb.as_str() {
                "EHLO" | "HELO" => "250 fake",
                "MAIL" => {
                    captured.mail_from.push(line.clone());
                    "250 ok"
                }
                "RCPT" => {
                    captured.rcpt_to.push(line.clone());
                    rcpt
                }
                "DATA" => {
                    write.write_all(b"354 go on\r\n").await.unwrap();
                    while let Ok(Some(line)) = lines.next_line().await {
                        if line == "." {
                            break;
                        }
                        captured.data.push_str(&line);
                        captured.data.push('\n');
                    }
                    "250 queued"
                }
                "QUIT" => {
                    write.write_all(b"221 bye\r\n").await.unwrap();
                    break;
                }
                "RSET" | "NOOP" => "250 ok",
                _ => "502 not implemented",
            };
            write.write_all(format!("{reply}\r\n").as_bytes()).await.unwrap();
        }
        let _ = tx.send(captured);
    });
    (port, rx)
}

/// The header `name` of a captured message, unfolded.
fn header(data: &str, name: &str) -> Option<String> {
    let head = data.split("\n\n").next()?.replace("\n ", " ");
    head.lines().find_map(|l| l.strip_prefix(&format!("{name}: ")).map(str::to_owned))
}

fn alert(scope: &str) -> Value {
    json!({
        "type": "alert.firing",
        "timestamp": "2026-01-05T10:00:00Z",
        "data": {
            "id": "ep_0123456789abcdef0123456789abcdef",
            "rule": "error_rate",
            "scope": scope,
            "state": "firing",
            "started_at": "2026-01-05T09:58:00Z",
            "resolved_at": null,
            "value": 0.075,
            "threshold": 0.05,
            "message": "7.5 % of 40 attempts failed in 1 h",
        },
    })
}

const ID: &str = "ep_0123456789abcdef0123456789abcdef.firing.ops-mail";

fn to() -> Vec<String> {
    vec!["ops@example.com".to_owned(), "oncall@example.com".to_owned()]
}

#[tokio::test]
async fn an_alert_arrives_with_its_subject_recipients_and_fields() {
    let (port, captured) = relay("250 ok").await;
    let url = format!("smtp://127.0.0.1:{port}?tls=none");
    send_alert(&url, "leadflow@example.com", &to(), ID, &alert("destination:crm")).await.unwrap();

    let c = captured.await.unwrap();
    assert_eq!(c.mail_from, ["MAIL FROM:<leadflow@example.com>"]);
    assert_eq!(c.rcpt_to, ["RCPT TO:<ops@example.com>", "RCPT TO:<oncall@example.com>"]);
    let data = &c.data;
    let subject = "[leadflow] Firing: error_rate on destination:crm (7.5 % of 40 attempts failed in 1 h)";
    assert_eq!(header(data, "Subject").as_deref(), Some(subject), "{data}");
    assert_eq!(header(data, "From").as_deref(), Some("leadflow <leadflow@example.com>"), "{data}");
    assert_eq!(header(data, "To").as_deref(), Some("ops@example.com, oncall@example.com"), "{data}");
    assert_eq!(header(data, "Message-ID"), Some(format!("<{ID}@leadflow>")), "{data}");
    assert_eq!(header(data, "Content-Type").as_deref(), Some("text/plain; charset=utf-8"), "{data}");
    for line in [
        "rule         error_rate",
        "scope        destination:crm",
        "state        firing",
        "started_at   2026-01-05T09:58:00Z",
        "resolved_at  -",
        "value        0.075",
        "threshold    0.05",
        "message      7.5 % of 40 attempts failed in 1 h",
        "Episode ep_0123456789abcdef0123456789abcdef",
    ] {
        assert!(data.lines().any(|l| l == line), "{line:?} missing from\n{data}");
    }
}

#[tokio::test]
async fn a_refused_recipient_is_not_retried() {
    let (port, _captured) = relay("550 5.1.1 no such user").await;
    let url = format!("smtp://127.0.0.1:{port}?tls=none");
    let failure = send_alert(&url, "leadflow@example.com", &to(), ID, &alert("source:web")).await.unwrap_err();
    assert!(!failure.retryable, "{failure:?}");
    assert!(failure.error.contains("550"), "{failure:?}");
}

#[tokio::test]
async fn a_relay_answering_4xx_is_tried_again() {
    let (port, _captured) = relay("451 4.3.0 try later").await;
    let url = format!("smtp://127.0.0.1:{port}?tls=none");
    let failure = send_alert(&url, "leadflow@example.com", &to(), ID, &alert("source:web")).await.unwrap_err();
    assert!(failure.retryable, "{failure:?}");
}

#[tokio::test]
async fn a_closed_port_is_tried_again_and_the_password_is_not_reported() {
    let port = {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        listener.local_addr().unwrap().port()
    };
    let url = format!("smtp://alerts:s3cret-pw@127.0.0.1:{port}?tls=none");
    let failure = send_alert(&url, "leadflow@example.com", &to(), ID, &alert("source:web")).await.unwrap_err();
    assert!(failure.retryable, "{failure:?}");
    assert!(!failure.error.contains("s3cret-pw"), "{failure:?}");
}

#[tokio::test]
async fn plain_smtp_insists_on_starttls_and_sends_nothing_without_it() {
    let (port, captured) = relay("250 ok").await;
    let url = format!("smtp://alerts:s3cret-pw@127.0.0.1:{port}");
    let failure = send_alert(&url, "leadflow@example.com", &to(), ID, &alert("source:web")).await.unwrap_err();
    assert!(!failure.retryable, "{failure:?}");
    assert!(failure.error.contains("STARTTLS"), "{failure:?}");
    let c = captured.await.unwrap();
    assert!(c.mail_from.is_empty() && c.data.is_empty(), "{c:?}");
}

#[tokio::test]
async fn a_line_break_in_a_scope_adds_no_header_and_no_line() {
    let (port, captured) = relay("250 ok").await;
    let url = format!("smtp://127.0.0.1:{port}?tls=none");
    let scope = "source:web\r\nBcc: thief@example.net\r\n\r\n.\r\nMAIL FROM:<x@example.net>";
    send_alert(&url, "leadflow@example.com", &to(), ID, &alert(scope)).await.unwrap();

    let c = captured.await.unwrap();
    assert_eq!(c.mail_from.len(), 1, "{c:?}");
    assert_eq!(c.rcpt_to, ["RCPT TO:<ops@example.com>", "RCPT TO:<oncall@example.com>"]);
    assert!(!c.data.lines().any(|l| l.to_ascii_lowercase().starts_with("bcc:")), "{}", c.data);
    assert!(c.data.lines().any(|l| l.starts_with("scope        source:web  Bcc: thief@example.net")), "{}", c.data);
}

#[test]
fn the_url_decides_the_tls_mode() {
    let cases = [
        ("smtp://u:p@mail.example.com:587", "smtp://u:p@mail.example.com:587?tls=required"),
        ("smtp://mail.example.com?tls=required", "smtp://mail.example.com?tls=required"),
        ("smtp://mail.example.com?tls=opportunistic", "smtp://mail.example.com?tls=opportunistic"),
        ("smtp://localhost:25?tls=none", "smtp://localhost:25"),
        ("smtps://u:p@mail.example.com", "smtps://u:p@mail.example.com"),
    ];
    for (url, want) in cases {
        assert_eq!(relay_url(url).unwrap(), want, "{url}");
    }
    for bad in ["https://mail.example.com", "smtps://mail.example.com?tls=none", "smtp://u:p@h?tls=maybe", "not a url"]
    {
        let error = relay_url(bad).unwrap_err();
        assert!(!error.contains("u:p"), "{error}");
    }
}

#[test]
fn a_notification_id_makes_a_valid_message_id() {
    assert_eq!(message_id(ID), format!("<{ID}@leadflow>"));
    assert_eq!(message_id("a b>c"), "<a_b_c@leadflow>");
}
