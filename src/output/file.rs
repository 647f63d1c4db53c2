//! `--output FILE`: a report written to a file in the format its extension names, crash-safely
//! (a temporary file beside it, renamed into place once complete).

use std::fs::File;
use std::io::{BufWriter, Write};
use std::path::{Path, PathBuf};

use flate2::Compression;
use flate2::write::GzEncoder;

/// What a file's extension asks for.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub enum Container {
    /// `.csv`
    Csv,
    /// `.csv.gz`: the CSV, gzipped.
    CsvGz,
    /// `.parquet`
    Parquet,
    /// `.json`
    Json,
}

impl Container {
    /// The container `path`'s extension names.
    pub fn of(path: &Path) -> Result<Self, String> {
        let name = path
            .file_name()
            .map(|n| n.to_string_lossy().to_lowercase())
            .unwrap_or_default();
        [
            (".csv.gz", Container::CsvGz),
            (".csv", Container::Csv),
            (".parquet", Container::Parquet),
            (".json", Container::Json),
        ]
        .into_iter()
        .find(|(ending, _)| name.ends_with(ending))
        .map(|(_, container)| container)
        .ok_or_else(|| {
            format!(
                "{}: name the format with the extension: .csv, .csv.gz, .parquet or .json",
                path.display()
            )
        })
    }
}

enum Sink {
    Plain(BufWriter<File>),
    Gz(Box<GzEncoder<BufWriter<File>>>),
}

/// A report file being written: bytes go to a temporary file until [`OutputFile::close`].
pub struct OutputFile {
    path: PathBuf,
    tmp: PathBuf,
    sink: Sink,
}

impl OutputFile {
    /// Starts writing `path` in `container`.
    pub fn create(path: &Path, container: Container) -> std::io::Result<Self> {
        let mut tmp = path.as_os_str().to_owned();
        tmp.push(".tmp");
        let tmp = PathBuf::from(tmp);
        let file = BufWriter::with_capacity(256 * 1024, File::create(&tmp)?);
        let sink = match container {
            Container::CsvGz => Sink::Gz(Box::new(GzEncoder::new(file, Compression::fast()))),
            _ => Sink::Plain(file),
        };
        Ok(OutputFile {
            path: path.to_path_buf(),
            tmp,
            sink,
        })
    }

    /// Finishes the file (gzip's trailer), syncs it and renames it into place.
    pub fn close(self) -> std::io::Result<()> {
        let file = match self.sink {
            Sink::Plain(file) => file,
            Sink::Gz(gz) => gz.finish()?,
        };
        let file = file.into_inner().map_err(|e| e.into_error())?;
        file.sync_all()?;
        std::fs::rename(&self.tmp, &self.path)
    }
}

impl Write for OutputFile {
    fn write(&mut self, data: &[u8]) -> std::io::Result<usize> {
        match &mut self.sink {
            Sink::Plain(file) => file.write(data),
            Sink::Gz(gz) => gz.write(data),
        }
    }

    fn flush(&mut self) -> std::io::Result<()> {
        match &mut self.sink {
            Sink::Plain(file) => file.flush(),
            Sink::Gz(gz) => gz.flush(),
        }
    }
}

#[cfg(test)]
mod test {
    use super::*;

    #[test]
    fn the_extension_names_the_format() {
        for (name, container) in [
            ("month.csv", Container::Csv),
            ("month.CSV.gz", Container::CsvGz),
            ("out/focus.parquet", Container::Parquet),
            ("a.json", Container::Json),
        ] {
            assert_eq!(Container::of(Path::new(name)), Ok(container), "{name}");
        }
        let refused = Container::of(Path::new("month.xlsx")).unwrap_err();
        assert!(
            refused.contains(".csv, .csv.gz, .parquet or .json"),
            "{refused}"
        );
    }

    #[test]
    fn a_gzipped_file_appears_whole_on_close() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("r.csv.gz");
        let mut out = OutputFile::create(&path, Container::CsvGz).unwrap();
        out.write_all(b"a,b\r\n1,2\r\n").unwrap();
        assert!(!path.exists());
        out.close().unwrap();
        let mut text = String::new();
        std::io::Read::read_to_string(
            &mut flate2::read::GzDecoder::new(File::open(&path).unwrap()),
            &mut text,
        )
        .unwrap();
        assert_eq!(text, "a,b\r\n1,2\r\n");
    }
}
