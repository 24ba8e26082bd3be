//! A generic, owned view of a `pg_query` parse tree, so the classifier can visit every node
//! without a hand-written match over all ~270 node types.
//!
//! `pg_query`'s own `nodes()` iterator only follows the fields its authors cared about (it
//! skips, for example, most utility statements' children), which is not enough to promise
//! "a dangerous call anywhere in the tree is seen". Every protobuf type in `pg_query` derives
//! `serde::Serialize`, so a small [`serde::Serializer`] turns any tree into [`Value`]s that
//! carry each struct's type name and field names. A new node type in a future `pg_query`
//! is then walked automatically.

use serde::ser::{self, Serialize};
use thiserror::Error;

/// Deeper than any tree `pg_query` can hand back (its protobuf decoder stops at 100 nested
/// messages), so this only guards against a future change there overflowing our stack.
const MAX_DEPTH: usize = 512;

/// One node of the generic tree.
#[derive(Debug, Clone, PartialEq)]
pub(super) enum Value {
    /// `None`, unit, and scalars the classifier never reads (floats, bytes).
    Unit,
    Bool(bool),
    Int(i64),
    Str(String),
    Seq(Vec<Value>),
    /// A protobuf message: its type name (e.g. `"DeleteStmt"`) and its fields in order.
    Node(&'static str, Vec<(&'static str, Value)>),
}

/// Why a tree could not be converted.
#[derive(Debug, Error, PartialEq, Eq)]
pub(super) enum TreeError {
    #[error("parse tree is nested more than {MAX_DEPTH} levels deep")]
    TooDeep,
    #[error("parse tree could not be read: {0}")]
    Custom(String),
}

impl ser::Error for TreeError {
    fn custom<T: std::fmt::Display>(msg: T) -> Self {
        TreeError::Custom(msg.to_string())
    }
}

impl Value {
    /// Converts any serializable `pg_query` value.
    pub(super) fn from_tree<T: Serialize + ?Sized>(tree: &T) -> Result<Value, TreeError> {
        tree.serialize(ValueSerializer { depth: 0 })
    }

    /// The node's type name and fields, if this is a node.
    pub(super) fn as_node(&self) -> Option<(&'static str, &[(&'static str, Value)])> {
        match self {
            Value::Node(name, fields) => Some((name, fields)),
            _ => None,
        }
    }

    /// The field `name` of a node (`None` for non-nodes and absent fields).
    pub(super) fn field(&self, name: &str) -> Option<&Value> {
        self.as_node().and_then(|(_, fields)| field(fields, name))
    }

    pub(super) fn as_str(&self) -> Option<&str> {
        match self {
            Value::Str(s) => Some(s),
            _ => None,
        }
    }

    pub(super) fn as_seq(&self) -> &[Value] {
        match self {
            Value::Seq(items) => items,
            _ => &[],
        }
    }

    /// True unless the value is absent: an unset `Option` serializes as [`Value::Unit`].
    pub(super) fn is_present(&self) -> bool {
        !matches!(self, Value::Unit)
    }
}

/// The field `name` among `fields`.
pub(super) fn field<'a>(fields: &'a [(&'static str, Value)], name: &str) -> Option<&'a Value> {
    fields.iter().find(|(k, _)| *k == name).map(|(_, v)| v)
}

/// A string field, empty when absent (protobuf does not distinguish the two).
pub(super) fn str_field<'a>(fields: &'a [(&'static str, Value)], name: &str) -> &'a str {
    field(fields, name).and_then(Value::as_str).unwrap_or("")
}

/// A bool field, false when absent.
pub(super) fn bool_field(fields: &[(&'static str, Value)], name: &str) -> bool {
    matches!(field(fields, name), Some(Value::Bool(true)))
}

/// An integer (protobuf enum) field, 0 when absent.
pub(super) fn int_field(fields: &[(&'static str, Value)], name: &str) -> i32 {
    match field(fields, name) {
        Some(Value::Int(i)) => i32::try_from(*i).unwrap_or(0),
        _ => 0,
    }
}

/// True when the field holds something (a non-empty list, a set option).
pub(super) fn has_field(fields: &[(&'static str, Value)], name: &str) -> bool {
    match field(fields, name) {
        None | Some(Value::Unit) => false,
        Some(Value::Seq(items)) => !items.is_empty(),
        Some(_) => true,
    }
}

struct ValueSerializer {
    depth: usize,
}

impl ValueSerializer {
    fn child(&self) -> Result<ValueSerializer, TreeError> {
        if self.depth >= MAX_DEPTH {
            return Err(TreeError::TooDeep);
        }
        Ok(ValueSerializer {
            depth: self.depth + 1,
        })
    }
}

struct SeqBuilder {
    ser: ValueSerializer,
    items: Vec<Value>,
}

struct NodeBuilder {
    ser: ValueSerializer,
    name: &'static str,
    fields: Vec<(&'static str, Value)>,
}

impl ser::Serializer for ValueSerializer {
    type Ok = Value;
    type Error = TreeError;
    type SerializeSeq = SeqBuilder;
    type SerializeTuple = SeqBuilder;
    type SerializeTupleStruct = SeqBuilder;
    type SerializeTupleVariant = SeqBuilder;
    type SerializeMap = SeqBuilder;
    type SerializeStruct = NodeBuilder;
    type SerializeStructVariant = NodeBuilder;

    fn serialize_bool(self, v: bool) -> Result<Value, TreeError> {
        Ok(Value::Bool(v))
    }
    fn serialize_i8(self, v: i8) -> Result<Value, TreeError> {
        Ok(Value::Int(v.into()))
    }
    fn serialize_i16(self, v: i16) -> Result<Value, TreeError> {
        Ok(Value::Int(v.into()))
    }
    fn serialize_i32(self, v: i32) -> Result<Value, TreeError> {
        Ok(Value::Int(v.into()))
    }
    fn serialize_i64(self, v: i64) -> Result<Value, TreeError> {
        Ok(Value::Int(v))
    }
    fn serialize_u8(self, v: u8) -> Result<Value, TreeError> {
        Ok(Value::Int(v.into()))
    }
    fn serialize_u16(self, v: u16) -> Result<Value, TreeError> {
        Ok(Value::Int(v.into()))
    }
    fn serialize_u32(self, v: u32) -> Result<Value, TreeError> {
        Ok(Value::Int(v.into()))
    }
    fn serialize_u64(self, v: u64) -> Result<Value, TreeError> {
        Ok(Value::Int(i64::try_from(v).unwrap_or(i64::MAX)))
    }
    fn serialize_f32(self, _v: f32) -> Result<Value, TreeError> {
        Ok(Value::Unit)
    }
    fn serialize_f64(self, _v: f64) -> Result<Value, TreeError> {
        Ok(Value::Unit)
    }
    fn serialize_char(self, v: char) -> Result<Value, TreeError> {
        Ok(Value::Str(v.to_string()))
    }
    fn serialize_str(self, v: &str) -> Result<Value, TreeError> {
        Ok(Value::Str(v.to_owned()))
    }
    fn serialize_bytes(self, _v: &[u8]) -> Result<Value, TreeError> {
        Ok(Value::Unit)
    }
    fn serialize_none(self) -> Result<Value, TreeError> {
        Ok(Value::Unit)
    }
    fn serialize_some<T: Serialize + ?Sized>(self, value: &T) -> Result<Value, TreeError> {
        value.serialize(self)
    }
    fn serialize_unit(self) -> Result<Value, TreeError> {
        Ok(Value::Unit)
    }
    fn serialize_unit_struct(self, _name: &'static str) -> Result<Value, TreeError> {
        Ok(Value::Unit)
    }
    fn serialize_unit_variant(
        self,
        _name: &'static str,
        _index: u32,
        variant: &'static str,
    ) -> Result<Value, TreeError> {
        Ok(Value::Str(variant.to_owned()))
    }
    fn serialize_newtype_struct<T: Serialize + ?Sized>(
        self,
        _name: &'static str,
        value: &T,
    ) -> Result<Value, TreeError> {
        value.serialize(self)
    }
    /// A protobuf `oneof` (e.g. `Node::DeleteStmt(..)`): the payload names its own type.
    fn serialize_newtype_variant<T: Serialize + ?Sized>(
        self,
        _name: &'static str,
        _index: u32,
        _variant: &'static str,
        value: &T,
    ) -> Result<Value, TreeError> {
        value.serialize(self)
    }
    fn serialize_seq(self, len: Option<usize>) -> Result<SeqBuilder, TreeError> {
        Ok(SeqBuilder {
            ser: self.child()?,
            items: Vec::with_capacity(len.unwrap_or(0)),
        })
    }
    fn serialize_tuple(self, len: usize) -> Result<SeqBuilder, TreeError> {
        self.serialize_seq(Some(len))
    }
    fn serialize_tuple_struct(
        self,
        _name: &'static str,
        len: usize,
    ) -> Result<SeqBuilder, TreeError> {
        self.serialize_seq(Some(len))
    }
    fn serialize_tuple_variant(
        self,
        _name: &'static str,
        _index: u32,
        _variant: &'static str,
        len: usize,
    ) -> Result<SeqBuilder, TreeError> {
        self.serialize_seq(Some(len))
    }
    fn serialize_map(self, len: Option<usize>) -> Result<SeqBuilder, TreeError> {
        self.serialize_seq(len)
    }
    fn serialize_struct(self, name: &'static str, len: usize) -> Result<NodeBuilder, TreeError> {
        Ok(NodeBuilder {
            ser: self.child()?,
            name,
            fields: Vec::with_capacity(len),
        })
    }
    fn serialize_struct_variant(
        self,
        _name: &'static str,
        _index: u32,
        variant: &'static str,
        len: usize,
    ) -> Result<NodeBuilder, TreeError> {
        self.serialize_struct(variant, len)
    }
}

impl SeqBuilder {
    fn push<T: Serialize + ?Sized>(&mut self, value: &T) -> Result<(), TreeError> {
        let child = ValueSerializer {
            depth: self.ser.depth,
        };
        self.items.push(value.serialize(child)?);
        Ok(())
    }
}

impl ser::SerializeSeq for SeqBuilder {
    type Ok = Value;
    type Error = TreeError;
    fn serialize_element<T: Serialize + ?Sized>(&mut self, value: &T) -> Result<(), TreeError> {
        self.push(value)
    }
    fn end(self) -> Result<Value, TreeError> {
        Ok(Value::Seq(self.items))
    }
}

impl ser::SerializeTuple for SeqBuilder {
    type Ok = Value;
    type Error = TreeError;
    fn serialize_element<T: Serialize + ?Sized>(&mut self, value: &T) -> Result<(), TreeError> {
        self.push(value)
    }
    fn end(self) -> Result<Value, TreeError> {
        Ok(Value::Seq(self.items))
    }
}

impl ser::SerializeTupleStruct for SeqBuilder {
    type Ok = Value;
    type Error = TreeError;
    fn serialize_field<T: Serialize + ?Sized>(&mut self, value: &T) -> Result<(), TreeError> {
        self.push(value)
    }
    fn end(self) -> Result<Value, TreeError> {
        Ok(Value::Seq(self.items))
    }
}

impl ser::SerializeTupleVariant for SeqBuilder {
    type Ok = Value;
    type Error = TreeError;
    fn serialize_field<T: Serialize + ?Sized>(&mut self, value: &T) -> Result<(), TreeError> {
        self.push(value)
    }
    fn end(self) -> Result<Value, TreeError> {
        Ok(Value::Seq(self.items))
    }
}

/// Maps (none in parse trees today) become a flat list of keys and values.
impl ser::SerializeMap for SeqBuilder {
    type Ok = Value;
    type Error = TreeError;
    fn serialize_key<T: Serialize + ?Sized>(&mut self, key: &T) -> Result<(), TreeError> {
        self.push(key)
    }
    fn serialize_value<T: Serialize + ?Sized>(&mut self, value: &T) -> Result<(), TreeError> {
        self.push(value)
    }
    fn end(self) -> Result<Value, TreeError> {
        Ok(Value::Seq(self.items))
    }
}

impl NodeBuilder {
    fn push<T: Serialize + ?Sized>(
        &mut self,
        key: &'static str,
        value: &T,
    ) -> Result<(), TreeError> {
        let child = ValueSerializer {
            depth: self.ser.depth,
        };
        self.fields.push((key, value.serialize(child)?));
        Ok(())
    }

    fn finish(mut self) -> Value {
        // `Node { node: <oneof> }` is pure protobuf plumbing around every child node:
        // collapse it so the tree is half as deep and a node's children are nodes.
        if self.name == "Node" && self.fields.len() == 1 {
            if let Some((_, inner)) = self.fields.pop() {
                return inner;
            }
        }
        Value::Node(self.name, self.fields)
    }
}

impl ser::SerializeStruct for NodeBuilder {
    type Ok = Value;
    type Error = TreeError;
    fn serialize_field<T: Serialize + ?Sized>(
        &mut self,
        key: &'static str,
        value: &T,
    ) -> Result<(), TreeError> {
        self.push(key, value)
    }
    fn end(self) -> Result<Value, TreeError> {
        Ok(self.finish())
    }
}

impl ser::SerializeStructVariant for NodeBuilder {
    type Ok = Value;
    type Error = TreeError;
    fn serialize_field<T: Serialize + ?Sized>(
        &mut self,
        key: &'static str,
        value: &T,
    ) -> Result<(), TreeError> {
        self.push(key, value)
    }
    fn end(self) -> Result<Value, TreeError> {
        Ok(self.finish())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn stmt(sql: &str) -> Value {
        let parsed = pg_query::parse(sql, 0).expect("test SQL parses");
        let raw = parsed.protobuf.stmts.first().expect("one statement");
        Value::from_tree(&raw.stmt).expect("tree converts")
    }

    #[test]
    fn nodes_carry_type_and_field_names() {
        let v = stmt("DELETE FROM s.t WHERE a = 1");
        let (name, fields) = v.as_node().expect("node");
        assert_eq!(name, "DeleteStmt");
        let rel = field(fields, "relation").expect("relation");
        let (rel_name, rel_fields) = rel.as_node().expect("range var");
        assert_eq!(rel_name, "RangeVar");
        assert_eq!(str_field(rel_fields, "schemaname"), "s");
        assert_eq!(str_field(rel_fields, "relname"), "t");
        // The `Node` wrapper is collapsed: the WHERE clause is the expression itself.
        let (where_name, _) = field(fields, "where_clause")
            .and_then(Value::as_node)
            .expect("where");
        assert_eq!(where_name, "AExpr");
    }

    #[test]
    fn absent_options_are_unit() {
        let v = stmt("DELETE FROM t");
        assert_eq!(v.field("where_clause"), Some(&Value::Unit));
        assert!(!v.field("where_clause").is_some_and(Value::is_present));
    }

    #[test]
    fn depth_limit_is_an_error_not_a_crash() {
        assert_eq!(
            Value::from_tree(&Deep(MAX_DEPTH + 10)),
            Err(TreeError::TooDeep)
        );
        assert!(Value::from_tree(&Deep(MAX_DEPTH - 10)).is_ok());
    }

    /// A value nested `n` lists deep.
    struct Deep(usize);
    impl Serialize for Deep {
        fn serialize<S: ser::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
            use ser::SerializeSeq;
            let mut seq = s.serialize_seq(Some(1))?;
            if self.0 > 0 {
                seq.serialize_element(&Deep(self.0 - 1))?;
            }
            seq.end()
        }
    }
}
