//! The read path's buffer: it holds memory only while bytes of a packet wait in it.
//!
//! Why: every idle connection used to keep a read buffer allocated while it waited for its
//! next packet (256 B and more, 10,000 idle connections paid for it all the time). Here a
//! read waits with no buffer at all: the bytes are read into a stack array, which exists only
//! while the task is polled, and copied into the connection's buffer once they are there. A
//! packet that spans several reads keeps its buffer, and reads go straight into its spare
//! room; once everything read is decoded, the buffer is released.

use std::future::{poll_fn, Future};
use std::io;
use std::mem::MaybeUninit;
use std::pin::{pin, Pin};
use std::task::{ready, Context, Poll};

use bytes::BytesMut;
use tokio::io::{AsyncRead, AsyncReadExt, ReadBuf};

/// Bytes read at most into the stack array (when the buffer has less spare room): the size of
/// the old up-front buffer. Measured (5 s runs of the compare workloads, release build): 1 KiB
/// reads doubled QoS 1 fan-out's p99 and RSS (payloads pin their larger read chunks) and 4-8
/// KiB reads let publishers flood a QoS 0 subscriber that cannot keep up (its rate fell 3-5x,
/// the excess dropped); 256 B kept every workload at or above its rate before this change.
const STACK_READ: usize = 256;

/// Read what the peer sent into `buf`; resolves to the number of bytes read (0: end of
/// stream). While it waits, `buf` need hold no memory.
pub(super) fn read_some<'a, R: AsyncRead + Unpin>(
    rd: &'a mut R,
    buf: &'a mut BytesMut,
) -> impl Future<Output = io::Result<usize>> + 'a {
    poll_fn(move |cx| poll_read_some(rd, cx, buf))
}

fn poll_read_some<R: AsyncRead + Unpin>(
    rd: &mut R,
    cx: &mut Context<'_>,
    buf: &mut BytesMut,
) -> Poll<io::Result<usize>> {
    if buf.capacity() - buf.len() >= STACK_READ {
        // A large packet in progress: its buffer has room, read into it.
        return pin!(rd.read_buf(buf)).poll(cx);
    }
    let mut stack = [MaybeUninit::<u8>::uninit(); STACK_READ];
    let mut read = ReadBuf::uninit(&mut stack);
    ready!(Pin::new(rd).poll_read(cx, &mut read))?;
    buf.extend_from_slice(read.filled());
    Poll::Ready(Ok(read.filled().len()))
}

/// Once everything read is decoded, give the buffer's memory back (an idle connection holds
/// none); a partial packet keeps it.
pub(super) fn release_if_empty(buf: &mut BytesMut) {
    if buf.is_empty() && buf.capacity() > 0 {
        *buf = BytesMut::new();
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;
    use tokio::io::AsyncWriteExt;

    #[tokio::test]
    async fn an_empty_buffer_holds_no_memory_and_fills_on_read() {
        let (mut client, mut server) = tokio::io::duplex(64 * 1024);
        let mut buf = BytesMut::new();
        client.write_all(b"hello").await.unwrap();
        assert_eq!(read_some(&mut server, &mut buf).await.unwrap(), 5);
        assert_eq!(&buf[..], b"hello");
        let _ = buf.split_to(5);
        release_if_empty(&mut buf);
        assert_eq!(buf.capacity(), 0);
        drop(client);
        assert_eq!(read_some(&mut server, &mut buf).await.unwrap(), 0);
        assert_eq!(buf.capacity(), 0);
    }

    #[tokio::test]
    async fn a_large_packet_accumulates_across_reads() {
        let (mut client, mut server) = tokio::io::duplex(4 * STACK_READ);
        let data: Vec<u8> = (0..100 * STACK_READ + 17).map(|i| i as u8).collect();
        let writer = async {
            client.write_all(&data).await.unwrap();
            drop(client);
        };
        let reader = async {
            let mut buf = BytesMut::new();
            while read_some(&mut server, &mut buf).await.unwrap() > 0 {}
            buf
        };
        let ((), buf) = tokio::join!(writer, reader);
        assert_eq!(&buf[..], &data[..]);
    }
}
