//! Rows in the text format of `COPY … FROM STDIN`, written straight from their `Serialize`
//! implementations: each field in the order serde gives it, tab-separated, one row a line, with
//! no JSON value built in between (building one per row was most of a large write's cost).
//!
//! A field is `\N` for none, `t`/`f`, a number, text (a uuid, a date, a name), or, for the
//! `jsonb` columns (sequences, maps, nested structs), its JSON text; the format's special
//! characters (backslash, tab, newline, carriage return) are escaped.

use std::fmt;

use serde::Serialize;
use serde::ser::{Error as _, Impossible, SerializeMap, SerializeStruct, Serializer};

/// What serialising a row can fail with.
type Error = serde_json::Error;

/// Appends `row` (a struct, or a map of columns for a struct with flattened fields) as one
/// line; pushes the column names in the order written onto `columns` when given. Returns how
/// many fields it wrote.
pub(crate) fn write_row<T: Serialize>(
    data: &mut Vec<u8>,
    row: &T,
    columns: Option<&mut Vec<String>>,
) -> Result<usize, Error> {
    let mut line = Line {
        data,
        columns,
        fields: 0,
    };
    row.serialize(&mut line)?;
    line.data.push(b'\n');
    Ok(line.fields)
}

/// One line being written.
struct Line<'a> {
    data: &'a mut Vec<u8>,
    columns: Option<&'a mut Vec<String>>,
    fields: usize,
}

impl Line<'_> {
    /// Writes one column's field: as itself if it is a scalar, else as its JSON text.
    fn field<T: Serialize + ?Sized>(&mut self, name: &str, value: &T) -> Result<(), Error> {
        if self.fields > 0 {
            self.data.push(b'\t');
        }
        self.fields += 1;
        if let Some(columns) = self.columns.as_deref_mut() {
            columns.push(name.to_owned());
        }
        let start = self.data.len();
        let mut compound = false;
        let scalar = value.serialize(Field {
            data: self.data,
            compound: &mut compound,
        });
        match scalar {
            Err(_) if compound => {
                self.data.truncate(start);
                escape(self.data, &serde_json::to_string(value)?);
                Ok(())
            }
            other => other,
        }
    }
}

fn not_a_row() -> Error {
    Error::custom("a row must serialise to a struct or map of columns")
}

impl<'a, 'b> Serializer for &'a mut Line<'b> {
    type Ok = ();
    type Error = Error;
    type SerializeSeq = Impossible<(), Error>;
    type SerializeTuple = Impossible<(), Error>;
    type SerializeTupleStruct = Impossible<(), Error>;
    type SerializeTupleVariant = Impossible<(), Error>;
    type SerializeMap = Columns<'a, 'b>;
    type SerializeStruct = Columns<'a, 'b>;
    type SerializeStructVariant = Impossible<(), Error>;

    fn serialize_struct(self, _: &'static str, _: usize) -> Result<Columns<'a, 'b>, Error> {
        Ok(Columns {
            line: self,
            key: None,
        })
    }

    fn serialize_map(self, _: Option<usize>) -> Result<Columns<'a, 'b>, Error> {
        Ok(Columns {
            line: self,
            key: None,
        })
    }

    fn serialize_bool(self, _: bool) -> Result<(), Error> {
        Err(not_a_row())
    }
    fn serialize_i8(self, _: i8) -> Result<(), Error> {
        Err(not_a_row())
    }
    fn serialize_i16(self, _: i16) -> Result<(), Error> {
        Err(not_a_row())
    }
    fn serialize_i32(self, _: i32) -> Result<(), Error> {
        Err(not_a_row())
    }
    fn serialize_i64(self, _: i64) -> Result<(), Error> {
        Err(not_a_row())
    }
    fn serialize_u8(self, _: u8) -> Result<(), Error> {
        Err(not_a_row())
    }
    fn serialize_u16(self, _: u16) -> Result<(), Error> {
        Err(not_a_row())
    }
    fn serialize_u32(self, _: u32) -> Result<(), Error> {
        Err(not_a_row())
    }
    fn serialize_u64(self, _: u64) -> Result<(), Error> {
        Err(not_a_row())
    }
    fn serialize_f32(self, _: f32) -> Result<(), Error> {
        Err(not_a_row())
    }
    fn serialize_f64(self, _: f64) -> Result<(), Error> {
        Err(not_a_row())
    }
    fn serialize_char(self, _: char) -> Result<(), Error> {
        Err(not_a_row())
    }
    fn serialize_str(self, _: &str) -> Result<(), Error> {
        Err(not_a_row())
    }
    fn serialize_bytes(self, _: &[u8]) -> Result<(), Error> {
        Err(not_a_row())
    }
    fn serialize_none(self) -> Result<(), Error> {
        Err(not_a_row())
    }
    fn serialize_some<T: Serialize + ?Sized>(self, _: &T) -> Result<(), Error> {
        Err(not_a_row())
    }
    fn serialize_unit(self) -> Result<(), Error> {
        Err(not_a_row())
    }
    fn serialize_unit_struct(self, _: &'static str) -> Result<(), Error> {
        Err(not_a_row())
    }
    fn serialize_unit_variant(self, _: &'static str, _: u32, _: &'static str) -> Result<(), Error> {
        Err(not_a_row())
    }
    fn serialize_newtype_struct<T: Serialize + ?Sized>(
        self,
        _: &'static str,
        value: &T,
    ) -> Result<(), Error> {
        value.serialize(self)
    }
    fn serialize_newtype_variant<T: Serialize + ?Sized>(
        self,
        _: &'static str,
        _: u32,
        _: &'static str,
        _: &T,
    ) -> Result<(), Error> {
        Err(not_a_row())
    }
    fn serialize_seq(self, _: Option<usize>) -> Result<Self::SerializeSeq, Error> {
        Err(not_a_row())
    }
    fn serialize_tuple(self, _: usize) -> Result<Self::SerializeTuple, Error> {
        Err(not_a_row())
    }
    fn serialize_tuple_struct(
        self,
        _: &'static str,
        _: usize,
    ) -> Result<Self::SerializeTupleStruct, Error> {
        Err(not_a_row())
    }
    fn serialize_tuple_variant(
        self,
        _: &'static str,
        _: u32,
        _: &'static str,
        _: usize,
    ) -> Result<Self::SerializeTupleVariant, Error> {
        Err(not_a_row())
    }
    fn serialize_struct_variant(
        self,
        _: &'static str,
        _: u32,
        _: &'static str,
        _: usize,
    ) -> Result<Self::SerializeStructVariant, Error> {
        Err(not_a_row())
    }
}

/// A row's columns, as struct fields or map entries (a flattened struct serialises as a map).
struct Columns<'a, 'b> {
    line: &'a mut Line<'b>,
    /// A map entry's column name, between its key and its value.
    key: Option<String>,
}

impl SerializeStruct for Columns<'_, '_> {
    type Ok = ();
    type Error = Error;

    fn serialize_field<T: Serialize + ?Sized>(
        &mut self,
        name: &'static str,
        value: &T,
    ) -> Result<(), Error> {
        self.line.field(name, value)
    }

    fn end(self) -> Result<(), Error> {
        Ok(())
    }
}

impl SerializeMap for Columns<'_, '_> {
    type Ok = ();
    type Error = Error;

    fn serialize_key<T: Serialize + ?Sized>(&mut self, key: &T) -> Result<(), Error> {
        match serde_json::to_value(key)? {
            serde_json::Value::String(name) => {
                self.key = Some(name);
                Ok(())
            }
            _ => Err(Error::custom("a column name must be a string")),
        }
    }

    fn serialize_value<T: Serialize + ?Sized>(&mut self, value: &T) -> Result<(), Error> {
        let name = self
            .key
            .take()
            .ok_or_else(|| Error::custom("a map value without its key"))?;
        self.line.field(&name, value)
    }

    fn end(self) -> Result<(), Error> {
        Ok(())
    }
}

/// One field written as a scalar; a compound value sets `compound` and fails, for the caller
/// to write its JSON text instead.
struct Field<'a> {
    data: &'a mut Vec<u8>,
    compound: &'a mut bool,
}

impl Field<'_> {
    fn compound(self) -> Error {
        *self.compound = true;
        Error::custom("a compound field is written as JSON")
    }

    fn text(self, text: &str) -> Result<(), Error> {
        escape(self.data, text);
        Ok(())
    }

    fn integer(self, n: impl itoa::Integer) -> Result<(), Error> {
        self.data
            .extend_from_slice(itoa::Buffer::new().format(n).as_bytes());
        Ok(())
    }

    fn null(self) -> Result<(), Error> {
        self.data.extend_from_slice(b"\\N");
        Ok(())
    }
}

impl Serializer for Field<'_> {
    type Ok = ();
    type Error = Error;
    type SerializeSeq = Impossible<(), Error>;
    type SerializeTuple = Impossible<(), Error>;
    type SerializeTupleStruct = Impossible<(), Error>;
    type SerializeTupleVariant = Impossible<(), Error>;
    type SerializeMap = Impossible<(), Error>;
    type SerializeStruct = Impossible<(), Error>;
    type SerializeStructVariant = Impossible<(), Error>;

    fn serialize_bool(self, value: bool) -> Result<(), Error> {
        self.data.push(if value { b't' } else { b'f' });
        Ok(())
    }
    fn serialize_i8(self, value: i8) -> Result<(), Error> {
        self.integer(value)
    }
    fn serialize_i16(self, value: i16) -> Result<(), Error> {
        self.integer(value)
    }
    fn serialize_i32(self, value: i32) -> Result<(), Error> {
        self.integer(value)
    }
    fn serialize_i64(self, value: i64) -> Result<(), Error> {
        self.integer(value)
    }
    fn serialize_u8(self, value: u8) -> Result<(), Error> {
        self.integer(value)
    }
    fn serialize_u16(self, value: u16) -> Result<(), Error> {
        self.integer(value)
    }
    fn serialize_u32(self, value: u32) -> Result<(), Error> {
        self.integer(value)
    }
    fn serialize_u64(self, value: u64) -> Result<(), Error> {
        self.integer(value)
    }
    // No column holds a float (money is integer paise); as JSON would write one, for the rest.
    fn serialize_f32(self, value: f32) -> Result<(), Error> {
        self.text(&serde_json::to_string(&value)?)
    }
    fn serialize_f64(self, value: f64) -> Result<(), Error> {
        self.text(&serde_json::to_string(&value)?)
    }
    fn serialize_char(self, value: char) -> Result<(), Error> {
        self.text(value.encode_utf8(&mut [0; 4]))
    }
    fn serialize_str(self, value: &str) -> Result<(), Error> {
        self.text(value)
    }
    fn serialize_bytes(self, _: &[u8]) -> Result<(), Error> {
        Err(self.compound())
    }
    fn serialize_none(self) -> Result<(), Error> {
        self.null()
    }
    fn serialize_some<T: Serialize + ?Sized>(self, value: &T) -> Result<(), Error> {
        value.serialize(self)
    }
    fn serialize_unit(self) -> Result<(), Error> {
        self.null()
    }
    fn serialize_unit_struct(self, _: &'static str) -> Result<(), Error> {
        self.null()
    }
    fn serialize_unit_variant(
        self,
        _: &'static str,
        _: u32,
        variant: &'static str,
    ) -> Result<(), Error> {
        self.text(variant)
    }
    fn serialize_newtype_struct<T: Serialize + ?Sized>(
        self,
        _: &'static str,
        value: &T,
    ) -> Result<(), Error> {
        value.serialize(self)
    }
    fn serialize_newtype_variant<T: Serialize + ?Sized>(
        self,
        _: &'static str,
        _: u32,
        _: &'static str,
        _: &T,
    ) -> Result<(), Error> {
        Err(self.compound())
    }
    fn serialize_seq(self, _: Option<usize>) -> Result<Self::SerializeSeq, Error> {
        Err(self.compound())
    }
    fn serialize_tuple(self, _: usize) -> Result<Self::SerializeTuple, Error> {
        Err(self.compound())
    }
    fn serialize_tuple_struct(
        self,
        _: &'static str,
        _: usize,
    ) -> Result<Self::SerializeTupleStruct, Error> {
        Err(self.compound())
    }
    fn serialize_tuple_variant(
        self,
        _: &'static str,
        _: u32,
        _: &'static str,
        _: usize,
    ) -> Result<Self::SerializeTupleVariant, Error> {
        Err(self.compound())
    }
    fn serialize_map(self, _: Option<usize>) -> Result<Self::SerializeMap, Error> {
        Err(self.compound())
    }
    fn serialize_struct(self, _: &'static str, _: usize) -> Result<Self::SerializeStruct, Error> {
        Err(self.compound())
    }
    fn serialize_struct_variant(
        self,
        _: &'static str,
        _: u32,
        _: &'static str,
        _: usize,
    ) -> Result<Self::SerializeStructVariant, Error> {
        Err(self.compound())
    }

    /// Dates, times and the like write themselves through `Display`: straight into the line.
    fn collect_str<T: fmt::Display + ?Sized>(self, value: &T) -> Result<(), Error> {
        use fmt::Write as _;
        write!(Escaped(self.data), "{value}").map_err(Error::custom)
    }
}

/// Appends `text` with the format's special characters escaped.
fn escape(data: &mut Vec<u8>, text: &str) {
    let bytes = text.as_bytes();
    let mut plain = 0;
    for (i, byte) in bytes.iter().enumerate() {
        let escaped: &[u8] = match byte {
            b'\\' => b"\\\\",
            b'\n' => b"\\n",
            b'\r' => b"\\r",
            b'\t' => b"\\t",
            _ => continue,
        };
        data.extend_from_slice(&bytes[plain..i]);
        data.extend_from_slice(escaped);
        plain = i + 1;
    }
    data.extend_from_slice(&bytes[plain..]);
}

/// A line as a `fmt::Write`, escaping what is written to it.
struct Escaped<'a>(&'a mut Vec<u8>);

impl fmt::Write for Escaped<'_> {
    fn write_str(&mut self, text: &str) -> fmt::Result {
        escape(self.0, text);
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::write_row;
    use chrono::{DateTime, NaiveDate};
    use serde::Serialize;
    use serde_json::json;
    use uuid::Uuid;

    #[derive(Serialize)]
    #[serde(rename_all = "snake_case")]
    enum Mode {
        RoundRobin,
    }

    #[derive(Serialize)]
    struct Counts {
        sent: i64,
        failed: u32,
    }

    #[derive(Serialize)]
    struct Row {
        id: Uuid,
        note: Option<String>,
        missing: Option<i64>,
        active: bool,
        paise: i64,
        mode: Mode,
        at: DateTime<chrono::Utc>,
        day: NaiveDate,
        open: Vec<String>,
        extra: serde_json::Value,
        #[serde(flatten)]
        counts: Counts,
    }

    #[test]
    fn a_row_is_one_line_of_fields_escaped_as_the_text_format_reads_them() {
        let row = Row {
            id: Uuid::from_u128(1),
            note: Some("a\tb\nc\rd\\N ₹ 1,00,000".into()),
            missing: None,
            active: true,
            paise: -42,
            mode: Mode::RoundRobin,
            at: DateTime::from_timestamp_micros(1_790_000_000_123_456).expect("instant"),
            day: NaiveDate::from_ymd_opt(2026, 12, 7).expect("day"),
            open: vec!["x\ty".into()],
            extra: json!({"k": null}),
            counts: Counts { sent: 3, failed: 0 },
        };
        let mut data = Vec::new();
        let mut columns = Vec::new();
        let fields = write_row(&mut data, &row, Some(&mut columns)).expect("a row");
        assert_eq!(
            columns,
            [
                "id", "note", "missing", "active", "paise", "mode", "at", "day", "open", "extra",
                "sent", "failed"
            ]
        );
        assert_eq!(fields, columns.len());
        let line = String::from_utf8(data).expect("utf-8");
        let expected = [
            "00000000-0000-0000-0000-000000000001",
            "a\\tb\\nc\\rd\\\\N ₹ 1,00,000",
            "\\N",
            "t",
            "-42",
            "round_robin",
            "2026-09-21T14:13:20.123456Z",
            "2026-12-07",
            "[\"x\\\\ty\"]",
            "{\"k\":null}",
            "3",
            "0",
        ];
        assert_eq!(line, format!("{}\n", expected.join("\t")));
    }

    #[test]
    fn what_is_not_a_struct_or_map_is_refused() {
        let mut data = Vec::new();
        assert!(write_row(&mut data, &42, None).is_err());
        assert!(write_row(&mut data, &vec![1, 2], None).is_err());
    }
}
