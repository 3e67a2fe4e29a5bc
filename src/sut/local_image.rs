//! Broker images built locally, with no registry: `FROM scratch` plus one broker binary and the
//! shared libraries `ldd` lists for it.

use std::path::{Path, PathBuf};

use futures::StreamExt;
use testcontainers::bollard::query_parameters::{
    BuildImageOptionsBuilder, BuilderVersion, RemoveImageOptions,
};

use super::engine::{self, EngineError};

/// Why a local image could not be built.
#[derive(Debug, thiserror::Error)]
pub enum LocalImageError {
    /// No usable Docker engine.
    #[error(transparent)]
    Engine(#[from] EngineError),
    /// A file of the build context could not be read.
    #[error("cannot read {path}: {source}")]
    Read {
        /// The file.
        path: PathBuf,
        /// Cause.
        source: std::io::Error,
    },
    /// `ldd` could not be run on the binary.
    #[error("cannot list the shared libraries of {path}: {reason}")]
    Ldd {
        /// The binary.
        path: PathBuf,
        /// Cause.
        reason: String,
    },
    /// The engine refused the build.
    #[error("building image {image} failed: {reason}")]
    Build {
        /// `image:tag`.
        image: String,
        /// Cause.
        reason: String,
    },
}

/// The absolute library paths in `ldd` output (the vDSO, which has no file, is left out).
pub fn parse_ldd(output: &str) -> Vec<PathBuf> {
    output
        .lines()
        .filter_map(|line| {
            let line = line.trim();
            let candidate = match line.split_once("=>") {
                Some((_, right)) => right.trim(),
                None => line,
            };
            let path = candidate.split_whitespace().next()?;
            path.starts_with('/').then(|| PathBuf::from(path))
        })
        .collect()
}

/// The shared libraries a binary needs (empty for a static binary).
pub fn shared_libraries(binary: &Path) -> Result<Vec<PathBuf>, LocalImageError> {
    let out = std::process::Command::new("ldd")
        .arg(binary)
        .output()
        .map_err(|e| LocalImageError::Ldd {
            path: binary.to_path_buf(),
            reason: e.to_string(),
        })?;
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    if !out.status.success() {
        // ldd exits 1 on a static binary ("not a dynamic executable").
        if stdout.contains("not a dynamic executable") || stderr.contains("not a dynamic") {
            return Ok(Vec::new());
        }
        return Err(LocalImageError::Ldd {
            path: binary.to_path_buf(),
            reason: stderr.trim().to_string(),
        });
    }
    Ok(parse_ldd(&stdout))
}

/// The Dockerfile of an image that runs `/broker` with `args` and exposes `port`.
pub fn dockerfile(args: &[String], port: u16) -> String {
    let mut entry = vec!["\"/broker\"".to_string()];
    entry.extend(args.iter().map(|a| format!("{a:?}")));
    format!(
        "FROM scratch\nCOPY rootfs/ /\nEXPOSE {port}\nENTRYPOINT [{}]\n",
        entry.join(", ")
    )
}

fn read(path: &Path) -> Result<Vec<u8>, LocalImageError> {
    std::fs::read(path).map_err(|source| LocalImageError::Read {
        path: path.to_path_buf(),
        source,
    })
}

fn append(
    tar: &mut tar::Builder<Vec<u8>>,
    path: &str,
    data: &[u8],
    mode: u32,
) -> Result<(), LocalImageError> {
    let mut header = tar::Header::new_gnu();
    header.set_size(data.len() as u64);
    header.set_mode(mode);
    header.set_cksum();
    tar.append_data(&mut header, path, data)
        .map_err(|source| LocalImageError::Read {
            path: PathBuf::from(path),
            source,
        })
}

/// The build context (a tar): Dockerfile, `rootfs/broker`, and each library at its own path.
pub fn build_context(
    binary: &Path,
    args: &[String],
    port: u16,
) -> Result<Vec<u8>, LocalImageError> {
    let mut tar = tar::Builder::new(Vec::new());
    append(
        &mut tar,
        "Dockerfile",
        dockerfile(args, port).as_bytes(),
        0o644,
    )?;
    append(&mut tar, "rootfs/broker", &read(binary)?, 0o755)?;
    for lib in shared_libraries(binary)? {
        let inside = format!("rootfs{}", lib.display());
        append(&mut tar, &inside, &read(&lib)?, 0o755)?;
    }
    // The broker may write nothing, but some runtimes expect /tmp.
    let mut dir = tar::Header::new_gnu();
    dir.set_entry_type(tar::EntryType::Directory);
    dir.set_mode(0o1777);
    dir.set_size(0);
    dir.set_cksum();
    tar.append_data(&mut dir, "rootfs/tmp/", std::io::empty())
        .map_err(|source| LocalImageError::Read {
            path: PathBuf::from("rootfs/tmp"),
            source,
        })?;
    tar.into_inner().map_err(|source| LocalImageError::Read {
        path: binary.to_path_buf(),
        source,
    })
}

/// Build `reference` (`name:tag`) from `binary` with the engine's classic builder: nothing is
/// pulled (`FROM scratch`).
pub async fn build(
    binary: &Path,
    args: &[String],
    port: u16,
    reference: &str,
) -> Result<(), LocalImageError> {
    engine::ensure().await?;
    let context = build_context(binary, args, port)?;
    let docker = testcontainers::core::client::docker_client_instance()
        .await
        .map_err(|e| LocalImageError::Build {
            image: reference.into(),
            reason: e.to_string(),
        })?;
    // The image this tag named before, removed once the new one is built (so that rebuilds
    // leave no dangling copies of the binary behind).
    let previous = docker
        .inspect_image(reference)
        .await
        .ok()
        .and_then(|i| i.id);
    let options = BuildImageOptionsBuilder::default()
        .dockerfile("Dockerfile")
        .t(reference)
        .rm(true)
        .forcerm(true)
        .version(BuilderVersion::BuilderV1)
        .build();
    let mut stream = docker.build_image(
        options,
        None,
        Some(testcontainers::bollard::body_full(context.into())),
    );
    while let Some(item) = stream.next().await {
        let info = item.map_err(|e| LocalImageError::Build {
            image: reference.into(),
            reason: e.to_string(),
        })?;
        if let Some(detail) = info.error_detail {
            return Err(LocalImageError::Build {
                image: reference.into(),
                reason: detail.message.unwrap_or_default(),
            });
        }
    }
    let current = docker
        .inspect_image(reference)
        .await
        .ok()
        .and_then(|i| i.id);
    if let Some(old) = previous.filter(|old| Some(old) != current.as_ref()) {
        // Only when no other tag names it; an image a container still uses stays too.
        let tags = docker
            .inspect_image(&old)
            .await
            .ok()
            .and_then(|i| i.repo_tags);
        if tags.is_some_and(|t| !t.is_empty()) {
            return Ok(());
        }
        let removed = docker
            .remove_image(&old, None::<RemoveImageOptions>, None)
            .await;
        if let Err(e) = removed {
            tracing::debug!("previous image {old} kept: {e}");
        }
    }
    Ok(())
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn ldd_output_gives_library_paths() {
        let out = "\tlinux-vdso.so.1 (0x00007ffd)\n\
                   \tlibgcc_s.so.1 => /lib/x86_64-linux-gnu/libgcc_s.so.1 (0x00007f)\n\
                   \tlibc.so.6 => /lib/x86_64-linux-gnu/libc.so.6 (0x00007f)\n\
                   \t/lib64/ld-linux-x86-64.so.2 (0x00007f)\n";
        assert_eq!(
            parse_ldd(out),
            vec![
                PathBuf::from("/lib/x86_64-linux-gnu/libgcc_s.so.1"),
                PathBuf::from("/lib/x86_64-linux-gnu/libc.so.6"),
                PathBuf::from("/lib64/ld-linux-x86-64.so.2"),
            ]
        );
    }

    #[test]
    fn the_dockerfile_starts_from_scratch() {
        let d = dockerfile(&["--listen".into(), "0.0.0.0:1883".into()], 1883);
        assert!(d.starts_with("FROM scratch\n"));
        assert!(d.contains("ENTRYPOINT [\"/broker\", \"--listen\", \"0.0.0.0:1883\"]"));
        assert!(d.contains("EXPOSE 1883"));
    }

    #[test]
    fn the_context_holds_the_binary_and_its_libraries() {
        let exe = std::env::current_exe().unwrap();
        let ctx = build_context(&exe, &[], 1883).unwrap();
        let mut archive = tar::Archive::new(ctx.as_slice());
        let names: Vec<String> = archive
            .entries()
            .unwrap()
            .map(|e| e.unwrap().path().unwrap().display().to_string())
            .collect();
        assert!(names.contains(&"Dockerfile".to_string()));
        assert!(names.contains(&"rootfs/broker".to_string()));
        for lib in shared_libraries(&exe).unwrap() {
            assert!(
                names.contains(&format!("rootfs{}", lib.display())),
                "{lib:?}"
            );
        }
    }
}
