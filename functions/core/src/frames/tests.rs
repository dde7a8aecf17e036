use super::*;
use crate::ids::{Body, ClientMsgId, DeviceId, GroupId, GroupName, MessageId, UserId};

fn refused(text: &str) -> Refusal {
    parse(text).expect_err(text)
}

fn code(text: &str) -> ErrorCode {
    refused(text).code
}

#[test]
fn malformed_json_and_non_objects_are_bad_requests() {
    for text in [
        "",
        "{",
        "not json",
        "[1,2]",
        "\"send\"",
        "42",
        "null",
        "{\"action\":\"send\"",
    ] {
        assert_eq!(code(text), ErrorCode::BadRequest, "{text:?}");
    }
}

#[test]
fn missing_or_non_string_action_is_a_bad_request_unknown_is_unknown_action() {
    assert_eq!(code(r#"{"to":"bob"}"#), ErrorCode::BadRequest);
    assert_eq!(code(r#"{"action":7}"#), ErrorCode::BadRequest);
    assert_eq!(code(r#"{"action":"dance"}"#), ErrorCode::UnknownAction);
    assert_eq!(
        code(r#"{"action":"SEND"}"#),
        ErrorCode::UnknownAction,
        "route keys are case-sensitive"
    );
}

#[test]
fn request_id_is_echoed_on_refusals_and_bounded() {
    let r = refused(r#"{"action":"dance","requestId":"r-1"}"#);
    assert_eq!(r.request_id.as_ref().map(RequestId::as_str), Some("r-1"));
    let long = format!(r#"{{"action":"heartbeat","requestId":"{}"}}"#, "x".repeat(65));
    let r = refused(&long);
    assert_eq!((r.code, r.request_id), (ErrorCode::BadRequest, None));
    assert_eq!(code(r#"{"action":"heartbeat","requestId":5}"#), ErrorCode::BadRequest);
    let ok = parse(&format!(r#"{{"action":"heartbeat","requestId":"{}"}}"#, "é".repeat(64))).unwrap();
    assert!(ok.request_id.is_some(), "the limit is 64 characters, not bytes");
}

#[test]
fn send_fields_are_validated_with_the_documented_codes() {
    let cases = [
        (r#"{"action":"send","to":"bob","body":"hi"}"#, ErrorCode::BadRequest), // no clientMsgId
        (
            r#"{"action":"send","clientMsgId":"c 1","to":"bob","body":"hi"}"#,
            ErrorCode::BadRequest,
        ),
        (
            r#"{"action":"send","clientMsgId":"c1","body":"hi"}"#,
            ErrorCode::BadRequest,
        ), // no target
        (
            r#"{"action":"send","clientMsgId":"c1","to":"bob","group":"g","body":"hi"}"#,
            ErrorCode::BadRequest,
        ),
        (
            r#"{"action":"send","clientMsgId":"c1","to":"b@b","body":"hi"}"#,
            ErrorCode::BadRequest,
        ),
        (
            r#"{"action":"send","clientMsgId":"c1","to":"bob"}"#,
            ErrorCode::BadRequest,
        ), // no body
        (
            r#"{"action":"send","clientMsgId":"c1","to":"bob","body":""}"#,
            ErrorCode::BadRequest,
        ),
        (
            r#"{"action":"send","clientMsgId":"c1","to":"bob","body":42}"#,
            ErrorCode::BadRequest,
        ),
        (
            r#"{"action":"send","clientMsgId":"c1","to":"bob","body":"x","seq":-1}"#,
            ErrorCode::BadRequest,
        ),
        (
            r#"{"action":"send","clientMsgId":"c1","to":"bob","body":"x","seq":1.5}"#,
            ErrorCode::BadRequest,
        ),
        (
            r#"{"action":"send","clientMsgId":"c1","to":"bob","body":"x","seq":"3"}"#,
            ErrorCode::BadRequest,
        ),
    ];
    for (text, expected) in cases {
        assert_eq!(code(text), expected, "{text}");
    }
}

#[test]
fn body_of_16384_bytes_is_accepted_and_16385_is_too_large() {
    let at_limit = format!(
        r#"{{"action":"send","clientMsgId":"c1","to":"bob","body":"{}"}}"#,
        "a".repeat(16384)
    );
    assert!(parse(&at_limit).is_ok());
    let over = format!(
        r#"{{"action":"send","clientMsgId":"c1","to":"bob","body":"{}"}}"#,
        "a".repeat(16385)
    );
    let r = refused(&over);
    assert_eq!(r.code, ErrorCode::TooLarge);
    assert_eq!(
        r.client_msg_id.as_ref().map(ClientMsgId::as_str),
        Some("c1"),
        "refusals echo the clientMsgId"
    );
}

#[test]
fn ack_read_sync_history_validation() {
    let id = MessageId::generate(1_700_000_000_000);
    let cases = [
        (r#"{"action":"ack"}"#.to_owned(), ErrorCode::BadRequest),
        (r#"{"action":"ack","messageIds":[]}"#.to_owned(), ErrorCode::BadRequest),
        (r#"{"action":"ack","messageIds":"x"}"#.to_owned(), ErrorCode::BadRequest),
        (
            r#"{"action":"ack","messageIds":["nope"]}"#.to_owned(),
            ErrorCode::BadRequest,
        ),
        (
            format!(
                r#"{{"action":"ack","messageIds":[{}]}}"#,
                vec![format!("\"{id}\""); 101].join(",")
            ),
            ErrorCode::BadRequest,
        ),
        (r#"{"action":"ack","group":"g1"}"#.to_owned(), ErrorCode::BadRequest),
        (
            r#"{"action":"ack","group":"g1","upToSeq":0}"#.to_owned(),
            ErrorCode::BadRequest,
        ),
        (r#"{"action":"read"}"#.to_owned(), ErrorCode::BadRequest),
        (
            r#"{"action":"read","with":"bob","group":"g"}"#.to_owned(),
            ErrorCode::BadRequest,
        ),
        (r#"{"action":"sync","cursor":7}"#.to_owned(), ErrorCode::BadRequest),
        (r#"{"action":"sync","cursor":""}"#.to_owned(), ErrorCode::BadRequest),
        (r#"{"action":"history"}"#.to_owned(), ErrorCode::BadRequest),
        (
            r#"{"action":"history","with":"bob","limit":0}"#.to_owned(),
            ErrorCode::BadRequest,
        ),
        (
            r#"{"action":"history","with":"bob","limit":101}"#.to_owned(),
            ErrorCode::BadRequest,
        ),
        (r#"{"action":"friends"}"#.to_owned(), ErrorCode::BadRequest),
        (
            r#"{"action":"friends","op":"poke","user":"bob"}"#.to_owned(),
            ErrorCode::BadRequest,
        ),
        (r#"{"action":"friends","op":"add"}"#.to_owned(), ErrorCode::BadRequest),
        (r#"{"action":"group","op":"create"}"#.to_owned(), ErrorCode::BadRequest),
        (
            r#"{"action":"group","op":"create","name":"x","members":"bob"}"#.to_owned(),
            ErrorCode::BadRequest,
        ),
        (
            r#"{"action":"group","op":"add","group":"g1"}"#.to_owned(),
            ErrorCode::BadRequest,
        ),
    ];
    for (text, expected) in cases {
        assert_eq!(code(&text), expected, "{text}");
    }
    let ok = parse(&format!(r#"{{"action":"ack","messageIds":["{id}","{id}"]}}"#)).unwrap();
    assert_eq!(
        ok.frame,
        ClientFrame::Ack(AckFrame::Messages { message_ids: vec![id] }),
        "duplicate ids collapse"
    );
}

#[test]
fn unknown_fields_are_ignored() {
    let r = parse(r#"{"action":"heartbeat","from":"mallory","extra":{"deep":[1]}}"#).unwrap();
    assert_eq!(r.frame, ClientFrame::Heartbeat);
}

#[test]
fn group_sends_ignore_a_client_seq() {
    let r = parse(r#"{"action":"send","clientMsgId":"c1","group":"g1","body":"x","seq":9}"#).unwrap();
    let ClientFrame::Send(s) = r.frame else {
        panic!("not a send")
    };
    assert_eq!(s.seq, None);
}

#[test]
fn a_device_scopes_a_one_on_one_seq_and_is_checked() {
    let bad = parse(r#"{"action":"send","clientMsgId":"c1","to":"bob","body":"x","seq":1,"device":"a b"}"#);
    assert_eq!(bad.unwrap_err().code, ErrorCode::BadRequest);
    let long = format!(
        r#"{{"action":"send","clientMsgId":"c1","to":"bob","body":"x","device":"{}"}}"#,
        "d".repeat(33)
    );
    assert_eq!(parse(&long).unwrap_err().code, ErrorCode::BadRequest);
    let r = parse(r#"{"action":"send","clientMsgId":"c1","group":"g1","body":"x","device":"d1"}"#).unwrap();
    let ClientFrame::Send(s) = r.frame else {
        panic!("not a send")
    };
    assert_eq!(s.device, None, "a group's sequence is the server's");
}

#[test]
fn what_clients_serialize_the_server_parses_back() {
    let u = |s: &str| UserId::parse(s).unwrap();
    let g = GroupId::parse("01HGROUP").unwrap();
    let frames = vec![
        ClientFrame::Send(SendFrame {
            client_msg_id: ClientMsgId::parse("c-1").unwrap(),
            target: Target::To(u("bob")),
            body: Body::parse("hello \"world\"").unwrap(),
            seq: Some(3),
            device: Some(DeviceId::parse("tab-7f3a").unwrap()),
            attachments: Vec::new(),
        }),
        ClientFrame::Send(SendFrame {
            client_msg_id: ClientMsgId::parse("c-2").unwrap(),
            target: Target::Group(g.clone()),
            body: Body::parse("hi all").unwrap(),
            seq: None,
            device: None,
            attachments: Vec::new(),
        }),
        ClientFrame::Send(SendFrame {
            client_msg_id: ClientMsgId::parse("c-3").unwrap(),
            target: Target::To(u("bob")),
            body: Body::default(),
            seq: None,
            device: None,
            attachments: vec![crate::attachments::AttachmentId::generate()],
        }),
        ClientFrame::Attach(super::AttachFrame {
            content_type: crate::attachments::ContentType::parse("image/jpeg").unwrap(),
            size: 123_456,
        }),
        ClientFrame::Ack(AckFrame::Messages {
            message_ids: vec![MessageId::generate(5)],
        }),
        ClientFrame::Ack(AckFrame::Group {
            group: g.clone(),
            up_to_seq: 7,
        }),
        ClientFrame::Read(ReadFrame::With {
            with: u("bob"),
            up_to: None,
        }),
        ClientFrame::Read(ReadFrame::Group {
            group: g.clone(),
            up_to_seq: 2,
        }),
        ClientFrame::Sync(SyncFrame { cursor: None }),
        ClientFrame::Sync(SyncFrame {
            cursor: Some("abc".into()),
        }),
        ClientFrame::History(HistoryFrame {
            conversation: Conversation::With(u("bob")),
            before: None,
            limit: Some(20),
        }),
        ClientFrame::History(HistoryFrame {
            conversation: Conversation::Group(g.clone()),
            before: Some("c".into()),
            limit: None,
        }),
        ClientFrame::Heartbeat,
        ClientFrame::Friends(FriendsOp::Add { user: u("bob") }),
        ClientFrame::Friends(FriendsOp::List),
        ClientFrame::Group(GroupOp::Create {
            name: GroupName::parse("Team").unwrap(),
            members: vec![u("bob")],
        }),
        ClientFrame::Group(GroupOp::Remove {
            group: g.clone(),
            user: u("bob"),
        }),
        ClientFrame::Group(GroupOp::List { cursor: None }),
    ];
    for frame in frames {
        let text = Request::new(frame.clone()).with_request_id("rq").to_json();
        let back = parse(&text).unwrap_or_else(|e| panic!("{text}: {e:?}"));
        assert_eq!(back.frame, frame, "{text}");
        assert_eq!(back.request_id.unwrap().as_str(), "rq");
        assert_eq!(
            back.frame.action(),
            serde_json::from_str::<serde_json::Value>(&text).unwrap()["action"]
        );
    }
}

#[test]
fn server_frames_have_the_documented_shape() {
    let ack = ServerFrame::Ack(AckReply {
        client_msg_id: ClientMsgId::parse("c1").unwrap(),
        message_id: MessageId::generate(1000),
        timestamp: 1000,
        seq: None,
        recipient: None,
    });
    let v: serde_json::Value = serde_json::from_str(&ack.to_json()).unwrap();
    assert_eq!(v["type"], "ack");
    assert_eq!(v["clientMsgId"], "c1");
    assert_eq!(v["timestamp"], 1000);
    assert!(v.get("seq").is_none() && v.get("requestId").is_none() && v.get("recipient").is_none());
    let offline = ServerFrame::Ack(AckReply {
        client_msg_id: ClientMsgId::parse("c2").unwrap(),
        message_id: MessageId::generate(1000),
        timestamp: 1000,
        seq: None,
        recipient: Some(RecipientState {
            status: Status::Offline,
            last_seen: Some(900),
        }),
    });
    let v: serde_json::Value = serde_json::from_str(&offline.to_json()).unwrap();
    assert_eq!(
        v["recipient"],
        serde_json::json!({"status": "offline", "lastSeen": 900})
    );

    let err = ServerFrame::error(ErrorCode::NotFound, "no such user").reply_to(RequestId::parse("r9").ok());
    let v: serde_json::Value = serde_json::from_str(&err.to_json()).unwrap();
    assert_eq!(
        (v["type"].as_str(), v["code"].as_str(), v["requestId"].as_str()),
        (Some("error"), Some("not_found"), Some("r9")),
        "one flat object: the reply's requestId next to the frame's fields"
    );
    let ok: serde_json::Value =
        serde_json::from_str(&ServerFrame::Ok.reply_to(RequestId::parse("r1").ok()).to_json()).unwrap();
    assert_eq!(ok, serde_json::json!({"type": "ok", "requestId": "r1"}));

    let sync = ServerFrame::Sync(SyncReply {
        conversations: None,
        messages: vec![],
        next: None,
    });
    let v: serde_json::Value = serde_json::from_str(&sync.to_json()).unwrap();
    assert!(
        v["next"].is_null() && v.as_object().unwrap().contains_key("next"),
        "next is always present"
    );

    let push = ServerFrame::Message(MessagePush {
        message_id: MessageId::generate(1),
        from: UserId::parse("alice").unwrap(),
        target: Target::Group(GroupId::parse("g").unwrap()),
        body: Some(Body::parse("x").unwrap()),
        timestamp: 1,
        client_msg_id: ClientMsgId::parse("c").unwrap(),
        seq: Some(4),
        device: None,
        status: None,
        edited_at: None,
        deleted: false,
        reactions: None,
        my_reaction: None,
        attachments: Vec::new(),
    });
    let text = push.to_json();
    let v: serde_json::Value = serde_json::from_str(&text).unwrap();
    assert_eq!((v["group"].as_str(), v["seq"].as_u64()), (Some("g"), Some(4)));
    for absent in ["editedAt", "deleted", "reactions", "myReaction"] {
        assert!(v.get(absent).is_none(), "{absent} is left out of a plain message");
    }
    assert_eq!(serde_json::from_str::<ServerFrame>(&text).unwrap(), push);
}

#[test]
fn attachments_refuse_empty_lists_repeats_and_an_empty_body_without_them() {
    let id = crate::attachments::AttachmentId::generate();
    let send = |extra: &str| parse(&format!(r#"{{"action":"send","clientMsgId":"c","to":"bob"{extra}}}"#));
    assert!(
        send(&format!(r#","attachments":["{}"]"#, id.as_str())).is_ok(),
        "no body with an attachment"
    );
    assert!(send(&format!(r#","body":"","attachments":["{}"]"#, id.as_str())).is_ok());
    assert!(send(r#","body":"""#).is_err(), "an empty body alone");
    assert!(send(r#","body":"x","attachments":[]"#).is_err());
    assert!(send(&format!(r#","body":"x","attachments":["{0}","{0}"]"#, id.as_str())).is_err());
    assert!(send(r#","body":"x","attachments":["../eve/1"]"#).is_err());
    let eleven: Vec<String> = (0..11)
        .map(|_| format!("\"{}\"", crate::attachments::AttachmentId::generate().as_str()))
        .collect();
    assert!(send(&format!(r#","body":"x","attachments":[{}]"#, eleven.join(","))).is_err());
    let attach = |extra: &str| parse(&format!(r#"{{"action":"attach"{extra}}}"#));
    assert!(attach(r#","contentType":"image/png","size":10"#).is_ok());
    assert!(attach(r#","contentType":"image/png","size":0"#).is_err());
    assert!(attach(r#","contentType":"png","size":10"#).is_err());
    assert!(attach(r#","size":10"#).is_err());
}

#[test]
fn each_kind_of_frame_is_counted_against_the_rate_limit_its_own_way() {
    let count = |text: &str| parse(text).unwrap().frame.rate_count();
    assert_eq!(
        count(r#"{"action":"send","to":"bob","clientMsgId":"c1","body":"hi"}"#),
        RateCount::InItsFirstStep
    );
    assert_eq!(
        count(r#"{"action":"ack","messageIds":["01J0000000000000000000000A"]}"#),
        RateCount::ByProgress
    );
    assert_eq!(
        count(r#"{"action":"read","group":"g1","upToSeq":3}"#),
        RateCount::ByProgress
    );
    assert_eq!(
        count(r#"{"action":"read","with":"bob"}"#),
        RateCount::Before,
        "a one-on-one read writes a mark"
    );
    assert_eq!(count(r#"{"action":"heartbeat"}"#), RateCount::Never);
    assert_eq!(
        count(r#"{"action":"typing","to":"bob","state":"start"}"#),
        RateCount::Never
    );
    assert_eq!(count(r#"{"action":"friends","op":"list"}"#), RateCount::Before);
}
