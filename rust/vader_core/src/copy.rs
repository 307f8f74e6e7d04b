//! PostgreSQL's binary COPY rows of an Arrow record batch, for the PostgreSQL sink
//! (`cryptosent.sinks.postgres.to_copy_binary`): the bytes pgpq's `ArrowToPostgresBinaryEncoder`
//! writes for the same batch (a test compares both), read straight from the arrays' buffers
//! with one loop per row and no call per field.

use pyo3::buffer::PyBuffer;
use pyo3::exceptions::PyValueError;
use pyo3::prelude::*;
use pyo3::types::PyBytes;

/// Microseconds from 1970-01-01 (Arrow) to 2000-01-01 (PostgreSQL's epoch).
const PG_EPOCH_US: i64 = 946_684_800_000_000;
/// `text`'s type oid, in the header of a `text[]` value.
const TEXT_OID: u32 = 25;

/// A column's kind, as `to_copy_binary` names it.
const STRING: u8 = 0;
const INT64: u8 = 1;
const INT32: u8 = 2;
const FLOAT64: u8 = 3;
const BOOL: u8 = 4;
const TIMESTAMP_US: u8 = 5;
const STRING_LIST: u8 = 6;

/// A buffer's bytes, or a clear error (pyarrow exports its buffers as signed bytes, format "b").
fn bytes_of(buffer: &PyBuffer<i8>) -> PyResult<&[u8]> {
    let items = buffer
        .as_slice_ptr()
        .ok_or_else(|| PyValueError::new_err("an Arrow buffer must be contiguous"))?;
    // SAFETY: the buffer stays exported while it is borrowed, and no Python code runs (the GIL
    // is held throughout the call), so nothing writes to it while it is read; i8 and u8 have
    // the same size and alignment
    let signed: &[i8] = unsafe { items.as_ref() };
    Ok(unsafe { std::slice::from_raw_parts(signed.as_ptr().cast::<u8>(), signed.len()) })
}

/// Bit `i` of a validity bitmap (none: every value is there).
#[inline]
fn valid(bitmap: Option<&[u8]>, i: usize) -> bool {
    bitmap.is_none_or(|b| b[i >> 3] >> (i & 7) & 1 != 0)
}

#[inline]
fn i32_at(bytes: &[u8], i: usize) -> i32 {
    i32::from_le_bytes(bytes[i * 4..i * 4 + 4].try_into().unwrap())
}

#[inline]
fn u64_at(bytes: &[u8], i: usize) -> u64 {
    u64::from_le_bytes(bytes[i * 8..i * 8 + 8].try_into().unwrap())
}

/// A string array's value `i` (offset already added), as UTF-8 bytes.
#[inline]
fn string_at<'a>(offsets: &[u8], data: &'a [u8], i: usize) -> &'a [u8] {
    let (start, end) = (i32_at(offsets, i), i32_at(offsets, i + 1));
    &data[start as usize..end as usize]
}

/// One column of the batch: its kind, its array's offset and the buffers that kind reads.
struct Column<'a> {
    kind: u8,
    offset: usize,
    validity: Option<&'a [u8]>,
    /// string and list offsets (i32)
    offsets: &'a [u8],
    /// values (fixed width, bits or UTF-8)
    data: &'a [u8],
    /// a list's strings: their array's offset, validity and offsets (data in `data`)
    child_offset: usize,
    child_validity: Option<&'a [u8]>,
    child_offsets: &'a [u8],
}

fn put_len(out: &mut Vec<u8>, len: usize) -> PyResult<()> {
    let len = i32::try_from(len)
        .map_err(|_| PyValueError::new_err("a value longer than COPY can carry (2 GiB)"))?;
    out.extend_from_slice(&len.to_be_bytes());
    Ok(())
}

impl Column<'_> {
    /// Whether the buffers hold `rows` values from `offset` on (offsets in range, bitmaps and
    /// values long enough), so that `put` cannot read past a buffer.
    fn fits(&self, rows: usize) -> bool {
        let end = self.offset + rows;
        let bits = |bitmap: Option<&[u8]>, n: usize| bitmap.is_none_or(|b| b.len() * 8 >= n);
        // the offsets of values `from..from + n` are ascending and end within `limit`
        let spans = |offsets: &[u8], from: usize, n: usize, limit: usize| {
            n == 0
                || (offsets.len() >= (from + n + 1) * 4 && {
                    let mut prev = i32_at(offsets, from);
                    prev >= 0
                        && (from + 1..=from + n).all(|k| {
                            let next = i32_at(offsets, k);
                            let ok = next >= prev;
                            prev = next;
                            ok
                        })
                        && prev as usize <= limit
                })
        };
        if !bits(self.validity, end) {
            return false;
        }
        match self.kind {
            STRING => spans(self.offsets, self.offset, rows, self.data.len()),
            INT64 | FLOAT64 | TIMESTAMP_US => self.data.len() >= end * 8,
            INT32 => self.data.len() >= end * 4,
            BOOL => bits(Some(self.data), end),
            _ => {
                let children = self.child_offsets.len() / 4;
                if !spans(self.offsets, self.offset, rows, children.saturating_sub(1)) {
                    return false;
                }
                let (first, last) = if rows == 0 {
                    (0, 0)
                } else {
                    (
                        i32_at(self.offsets, self.offset) as usize,
                        i32_at(self.offsets, end) as usize,
                    )
                };
                let from = self.child_offset + first;
                bits(self.child_validity, self.child_offset + last)
                    && spans(self.child_offsets, from, last - first, self.data.len())
            }
        }
    }

    fn put(&self, out: &mut Vec<u8>, row: usize) -> PyResult<()> {
        let i = self.offset + row;
        if !valid(self.validity, i) {
            out.extend_from_slice(&(-1i32).to_be_bytes());
            return Ok(());
        }
        match self.kind {
            STRING => {
                let value = string_at(self.offsets, self.data, i);
                put_len(out, value.len())?;
                out.extend_from_slice(value);
            }
            INT64 | FLOAT64 => {
                out.extend_from_slice(&8i32.to_be_bytes());
                out.extend_from_slice(&u64_at(self.data, i).to_be_bytes());
            }
            TIMESTAMP_US => {
                let micros = u64_at(self.data, i) as i64 - PG_EPOCH_US;
                out.extend_from_slice(&8i32.to_be_bytes());
                out.extend_from_slice(&micros.to_be_bytes());
            }
            INT32 => {
                out.extend_from_slice(&4i32.to_be_bytes());
                out.extend_from_slice(&i32_at(self.data, i).to_be_bytes());
            }
            BOOL => {
                out.extend_from_slice(&1i32.to_be_bytes());
                out.push(valid(Some(self.data), i) as u8);
            }
            _ => {
                // text[]: one dimension (pgpq writes one even when it is empty), the null flag
                // set when one of its items is null
                let (first, last) = (i32_at(self.offsets, i), i32_at(self.offsets, i + 1));
                let items = first as usize..last as usize;
                let at = out.len();
                out.extend_from_slice(&0i32.to_be_bytes()); // the length, set below
                out.extend_from_slice(&1i32.to_be_bytes());
                let flag = out.len();
                out.extend_from_slice(&0i32.to_be_bytes());
                out.extend_from_slice(&TEXT_OID.to_be_bytes());
                put_len(out, items.len())?;
                out.extend_from_slice(&1i32.to_be_bytes());
                for k in items {
                    let k = self.child_offset + k;
                    if valid(self.child_validity, k) {
                        let value = string_at(self.child_offsets, self.data, k);
                        put_len(out, value.len())?;
                        out.extend_from_slice(value);
                    } else {
                        out.extend_from_slice(&(-1i32).to_be_bytes());
                        out[flag + 3] = 1;
                    }
                }
                let len = i32::try_from(out.len() - at - 4)
                    .map_err(|_| PyValueError::new_err("an array longer than COPY can carry"))?;
                out[at..at + 4].copy_from_slice(&len.to_be_bytes());
            }
        }
        Ok(())
    }
}

/// Buffers of one column as `to_copy_binary` hands them over.
type ColumnSpec = (
    u8,
    usize,
    usize,
    Option<PyBuffer<i8>>,
    Option<PyBuffer<i8>>,
    Option<PyBuffer<i8>>,
    Option<PyBuffer<i8>>,
    Option<PyBuffer<i8>>,
);

/// The binary COPY rows (no header, no trailer) of a batch of `rows` rows; each column is
/// (kind, offset, child offset, validity, offsets, data, child validity, child offsets).
#[pyfunction]
pub fn copy_rows<'py>(
    py: Python<'py>,
    rows: usize,
    columns: Vec<ColumnSpec>,
) -> PyResult<Bound<'py, PyBytes>> {
    let mut views = Vec::with_capacity(columns.len());
    for (kind, offset, child_offset, validity, offsets, data, child_validity, child_offsets) in
        &columns
    {
        if *kind > STRING_LIST {
            return Err(PyValueError::new_err(format!("unknown column kind {kind}")));
        }
        let needs_offsets = matches!(*kind, STRING | STRING_LIST);
        if needs_offsets != offsets.is_some() || (*kind == STRING_LIST) != child_offsets.is_some() {
            return Err(PyValueError::new_err(
                "a column's buffers do not fit its kind",
            ));
        }
        views.push(Column {
            kind: *kind,
            offset: *offset,
            validity: validity.as_ref().map(bytes_of).transpose()?,
            offsets: offsets.as_ref().map(bytes_of).transpose()?.unwrap_or(&[]),
            data: data.as_ref().map(bytes_of).transpose()?.unwrap_or(&[]),
            child_offset: *child_offset,
            child_validity: child_validity.as_ref().map(bytes_of).transpose()?,
            child_offsets: child_offsets
                .as_ref()
                .map(bytes_of)
                .transpose()?
                .unwrap_or(&[]),
        });
    }
    if !views.iter().all(|column| column.fits(rows)) {
        return Err(PyValueError::new_err(
            "an Arrow array's buffers are shorter than its length says",
        ));
    }
    let fields = i16::try_from(views.len())
        .map_err(|_| PyValueError::new_err("more columns than COPY can carry"))?;
    let size = views.iter().map(|c| c.data.len()).sum::<usize>() + rows * (2 + 12 * views.len());
    let mut out = Vec::with_capacity(size);
    for row in 0..rows {
        out.extend_from_slice(&fields.to_be_bytes());
        for column in &views {
            column.put(&mut out, row)?;
        }
    }
    Ok(PyBytes::new(py, &out))
}
