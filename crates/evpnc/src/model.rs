//! An order-preserving JSON model. Text detail views render from the same
//! proto-JSON that `-json` prints, in the message's field order (which a
//! `serde_json::Value` map would sort alphabetically).
use std::fmt;

use serde::Serialize;
use serde::de::{Deserialize, Deserializer, MapAccess, SeqAccess, Visitor};

/// A JSON value whose objects keep their key order.
#[derive(Debug, Clone, PartialEq)]
pub enum J {
    Obj(Vec<(String, J)>),
    Arr(Vec<J>),
    Str(String),
    /// Numbers as their JSON text.
    Num(String),
    Bool(bool),
    Null,
}

impl J {
    /// The proto-JSON model of `v`, in serialisation order.
    pub fn of<T: Serialize>(v: &T) -> Result<J, String> {
        let s = serde_json::to_string(v).map_err(|e| e.to_string())?;
        serde_json::from_str(&s).map_err(|e| e.to_string())
    }

    /// The value of `key` in an object.
    pub fn get(&self, key: &str) -> Option<&J> {
        match self {
            J::Obj(kv) => kv.iter().find(|(k, _)| k == key).map(|(_, v)| v),
            _ => None,
        }
    }

    pub fn is_obj(&self) -> bool {
        matches!(self, J::Obj(_))
    }
}

impl<'de> Deserialize<'de> for J {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<J, D::Error> {
        d.deserialize_any(JVisitor)
    }
}

struct JVisitor;

impl<'de> Visitor<'de> for JVisitor {
    type Value = J;

    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
        f.write_str("any JSON value")
    }
    fn visit_bool<E>(self, v: bool) -> Result<J, E> {
        Ok(J::Bool(v))
    }
    fn visit_i64<E>(self, v: i64) -> Result<J, E> {
        Ok(J::Num(v.to_string()))
    }
    fn visit_u64<E>(self, v: u64) -> Result<J, E> {
        Ok(J::Num(v.to_string()))
    }
    fn visit_f64<E>(self, v: f64) -> Result<J, E> {
        Ok(J::Num(v.to_string()))
    }
    fn visit_str<E>(self, v: &str) -> Result<J, E> {
        Ok(J::Str(v.to_string()))
    }
    fn visit_string<E>(self, v: String) -> Result<J, E> {
        Ok(J::Str(v))
    }
    fn visit_unit<E>(self) -> Result<J, E> {
        Ok(J::Null)
    }
    fn visit_none<E>(self) -> Result<J, E> {
        Ok(J::Null)
    }
    fn visit_seq<A: SeqAccess<'de>>(self, mut s: A) -> Result<J, A::Error> {
        let mut v = Vec::new();
        while let Some(x) = s.next_element()? {
            v.push(x);
        }
        Ok(J::Arr(v))
    }
    fn visit_map<M: MapAccess<'de>>(self, mut m: M) -> Result<J, M::Error> {
        let mut v = Vec::new();
        while let Some((k, x)) = m.next_entry::<String, J>()? {
            v.push((k, x));
        }
        Ok(J::Obj(v))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keeps_field_order() {
        let j: J =
            serde_json::from_str(r#"{"z":1,"a":[true,null,"s"],"m":{"y":2.5,"b":-1}}"#).unwrap();
        assert_eq!(
            j,
            J::Obj(vec![
                ("z".into(), J::Num("1".into())),
                (
                    "a".into(),
                    J::Arr(vec![J::Bool(true), J::Null, J::Str("s".into())])
                ),
                (
                    "m".into(),
                    J::Obj(vec![
                        ("y".into(), J::Num("2.5".into())),
                        ("b".into(), J::Num("-1".into()))
                    ])
                ),
            ])
        );
        assert_eq!(j.get("z"), Some(&J::Num("1".into())));
    }
}
