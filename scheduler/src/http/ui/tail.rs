//! The end of a task's output for its page: the last bytes across the rotated and the current
//! file (see `deimos_runtime::runtime::output`), and the note saying what is not shown.

use std::io::{self, SeekFrom};
use std::path::Path;

use deimos_runtime::runtime::output::open_tail;
use tokio::fs::File;
use tokio::io::{AsyncReadExt, AsyncSeekExt};

/// The last bytes of a stream's output.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Tail {
    /// The text shown (lossily decoded).
    pub(crate) text: String,
    /// Bytes of the stream so far, dropped ones included.
    pub(crate) total: u64,
    /// Bytes dropped because the task exceeded its output limit.
    pub(crate) dropped: u64,
}

impl Tail {
    /// What the page says above the output, when it does not show all of it.
    pub(crate) fn note(&self, page_bytes: u64) -> Option<String> {
        let shown = if self.total > page_bytes {
            format!(
                "Showing the last {} KiB of {} bytes",
                page_bytes / 1024,
                self.total
            )
        } else {
            "Showing the output".to_owned()
        };
        match (self.dropped, self.total > page_bytes) {
            (0, false) => None,
            (0, true) => Some(format!("{shown}; the API has it all.")),
            (dropped, _) => Some(format!(
                "{shown}; the first {dropped} bytes were dropped because the task exceeded its \
                 output limit (task_output_limit)."
            )),
        }
    }
}

/// The last `limit` bytes of the output written to `path` (its rotated file included).
pub(crate) async fn read_tail(path: &Path, limit: u64) -> io::Result<Tail> {
    let tail = open_tail(path).await?;
    let mut previous = with_len(tail.previous).await?;
    let mut current = with_len(tail.current).await?;
    let on_disk =
        previous.as_ref().map_or(0, |(_, len)| *len) + current.as_ref().map_or(0, |(_, len)| *len);
    let mut bytes = Vec::new();
    let mut wanted = limit;
    let current_len = current.as_ref().map_or(0, |(_, len)| *len);
    if current_len < wanted {
        if let Some((file, len)) = &mut previous {
            let take = (wanted - current_len).min(*len);
            read_last(file, *len, take, &mut bytes).await?;
            wanted -= take;
        }
    }
    if let Some((file, len)) = &mut current {
        read_last(file, *len, wanted.min(*len), &mut bytes).await?;
    }
    Ok(Tail {
        text: String::from_utf8_lossy(&bytes).into_owned(),
        total: tail.dropped + on_disk,
        dropped: tail.dropped,
    })
}

async fn with_len(file: Option<File>) -> io::Result<Option<(File, u64)>> {
    match file {
        Some(file) => {
            let len = file.metadata().await?.len();
            Ok(Some((file, len)))
        }
        None => Ok(None),
    }
}

/// Appends the last `take` of the `len` bytes of `file` to `out`.
async fn read_last(file: &mut File, len: u64, take: u64, out: &mut Vec<u8>) -> io::Result<()> {
    file.seek(SeekFrom::Start(len - take)).await?;
    file.take(take).read_to_end(out).await?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn the_tail_spans_the_rotated_and_the_current_file() {
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("stdout");
        std::fs::write(&file, "0123456789").unwrap();
        let tail = read_tail(&file, 4).await.unwrap();
        assert_eq!(
            (tail.text.as_str(), tail.total, tail.dropped),
            ("6789", 10, 0)
        );
        assert_eq!(read_tail(&file, 40).await.unwrap().text, "0123456789");
        std::fs::write(dir.path().join("stdout.1"), "abcdef").unwrap();
        std::fs::write(dir.path().join("stdout.dropped"), "100").unwrap();
        let tail = read_tail(&file, 13).await.unwrap();
        assert_eq!((tail.text.as_str(), tail.total), ("def0123456789", 116));
        let note = tail.note(13).unwrap();
        assert!(note.contains("the first 100 bytes were dropped"), "{note}");
        assert_eq!(
            read_tail(&dir.path().join("none"), 4).await.unwrap().total,
            0
        );
    }

    #[test]
    fn nothing_is_noted_when_everything_is_shown() {
        let tail = |total, dropped| Tail {
            text: String::new(),
            total,
            dropped,
        };
        assert_eq!(tail(10, 0).note(512), None);
        assert!(tail(1000, 0)
            .note(512)
            .unwrap()
            .ends_with("the API has it all."));
    }
}
