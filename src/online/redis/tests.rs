use super::*;
use datafusion::arrow::array::{
    BooleanArray, Decimal128Array, Float64Array, Int32Array, Int64Array, ListArray,
    TimestampMicrosecondArray,
};
use datafusion::arrow::datatypes::Int32Type;

#[test]
fn parses_urls() {
    let (_, addr) = open_client("redis://127.0.0.1:6380").unwrap();
    assert_eq!(addr, "127.0.0.1:6380");
    let (client, addr) = open_client("redis://:s%40cret@cache/3").unwrap();
    assert_eq!(addr, "cache:6379");
    let info = client.get_connection_info();
    assert_eq!(info.redis_settings().password(), Some("s@cret"));
    assert_eq!(info.redis_settings().db(), 3);
    let (_, addr) = open_client("redis://app:pw@[::1]:7000/").unwrap();
    assert_eq!(addr, "[::1]:7000");
    // TLS is compiled in.
    let (client, addr) = open_client("rediss://cache.example:6380/1").unwrap();
    assert_eq!(addr, "cache.example:6380");
    assert!(matches!(
        client.get_connection_info().addr(),
        redis::ConnectionAddr::TcpTls { .. }
    ));
    for bad in [
        "http://h:1",
        "redis://h:1/x",
        "redis://user@h",
        "redis://",
        "nope",
    ] {
        let e = open_client(bad).unwrap_err();
        assert_eq!(e.kind, ErrorKind::InvalidArgument, "{bad}");
    }
    let e = open_client("redis://:hunter2@h:1/x").unwrap_err();
    assert!(!e.message.contains("hunter2"), "{}", e.message);
}

#[test]
fn set_names_are_encoded_and_escaped() {
    let k = Keys::new("a:b%c*");
    assert_eq!(k.pointer(), "fstore:online:a%3Ab%25c*");
    assert_eq!(k.generations(), "fstore:online:a%3Ab%25c*:gens");
    assert_eq!(k.entity_pattern(), "fstore:online:a%3Ab%25c\\*:g*:*");
    assert_eq!(glob_escape("x?[y]\\"), "x\\?\\[y\\]\\\\");
    let key = k.entity(42, "7\u{1f}x:y");
    assert_eq!(k.generation_of(&key), Some(42));
    assert_eq!(k.generation_of(b"fstore:online:a%3Ab%25c*:gens"), None);
    assert_eq!(k.generation_of(b"fstore:online:a%3Ab%25c*:g:x"), None);
    assert_eq!(k.generation_of(b"fstore:online:other:g1:x"), None);
}

#[test]
fn text_encoding_round_trips_or_falls_back_to_ipc() {
    let columns: Vec<ArrayRef> = vec![
        Arc::new(Int64Array::from(vec![Some(1), None, Some(i64::MIN)])),
        Arc::new(Float64Array::from(vec![
            Some(0.1),
            Some(-0.0),
            Some(1e300 / 7.0),
        ])),
        Arc::new(BooleanArray::from(vec![Some(true), None, Some(false)])),
        Arc::new(
            TimestampMicrosecondArray::from(vec![Some(1_700_000_000_123_456), None, Some(0)])
                .with_timezone("UTC"),
        ),
        Arc::new(TimestampMicrosecondArray::from(vec![
            Some(-1),
            None,
            Some(5),
        ])),
        Arc::new(
            Decimal128Array::from(vec![Some(12345), None, Some(-1)])
                .with_precision_and_scale(10, 2)
                .unwrap(),
        ),
    ];
    for column in columns {
        let text =
            text_encode(&column).unwrap_or_else(|| panic!("{} should be text", column.data_type()));
        let back = from_text(text, column.data_type()).unwrap();
        assert_eq!(back.as_ref(), column.as_ref());
    }
    let list: ArrayRef = Arc::new(ListArray::from_iter_primitive::<Int32Type, _, _>(vec![
        Some(vec![Some(1), None]),
        None,
        Some(vec![]),
    ]));
    assert!(text_encode(&list).is_none());
    let field = Field::new("l", list.data_type().clone(), true);
    let cells = ipc_encode(&field, &list).unwrap();
    assert!(cells[1].is_none());
    let decoded: Vec<ArrayRef> = cells
        .iter()
        .map(|c| match c {
            Some(b) => ipc_decode(b, &field).unwrap(),
            None => new_null_array(field.data_type(), 1),
        })
        .collect();
    let refs: Vec<&dyn Array> = decoded.iter().map(|c| c.as_ref()).collect();
    assert_eq!(concat(&refs).unwrap().as_ref(), list.as_ref());
    let ints: ArrayRef = Arc::new(Int32Array::from(vec![1]));
    assert!(from_text(StringArray::from(vec!["x"]), ints.data_type()).is_err());
}
