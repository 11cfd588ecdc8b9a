//! The reference side: a long-lived `node e2e/conformance/harness.mjs` speaking JSON lines.

use std::io::{self, BufRead, BufReader, Write};
use std::path::Path;
use std::process::{Child, ChildStdin, ChildStdout, Command, Stdio};

use serde_json::{Value as Json, json};

/// The Node harness process.
pub(crate) struct Harness {
    child: Child,
    stdin: Option<ChildStdin>,
    stdout: BufReader<ChildStdout>,
    next_id: u64,
}

impl Harness {
    /// Starts `node e2e/conformance/harness.mjs` in the workspace root.
    pub(crate) fn spawn(workspace: &Path) -> io::Result<Harness> {
        Harness::spawn_script(workspace, "harness.mjs", "socket.io-parser")
    }

    /// Starts `node e2e/conformance/SCRIPT` in the workspace root, after checking that `module` is installed.
    pub(crate) fn spawn_script(workspace: &Path, script: &str, module: &str) -> io::Result<Harness> {
        let dir = workspace.join("e2e/conformance");
        if !dir.join("node_modules").join(module).is_dir() {
            return Err(io::Error::other(format!(
                "the reference parsers are not installed: run `npm ci` in {} (scripts/conformance.sh does)",
                dir.display()
            )));
        }
        let mut child = Command::new("node")
            .arg(format!("e2e/conformance/{script}"))
            .current_dir(workspace)
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .spawn()?;
        let stdin = child.stdin.take();
        let stdout = BufReader::new(child.stdout.take().expect("piped"));
        Ok(Harness { child, stdin, stdout, next_id: 0 })
    }

    /// Sends every request (objects with an `op`) and returns the results in the same order: `Ok(result)`,
    /// or `Err(message)` when the harness itself failed on that request.
    pub(crate) fn call_batch(&mut self, requests: &[Json]) -> io::Result<Vec<Result<Json, String>>> {
        let first = self.next_id;
        let mut text = String::new();
        for (i, r) in requests.iter().enumerate() {
            let mut r = r.clone();
            r["id"] = json!(first + i as u64);
            text.push_str(&r.to_string());
            text.push('\n');
        }
        self.next_id += requests.len() as u64;
        let stdin = self.stdin.as_mut().ok_or_else(|| io::Error::other("harness stdin closed"))?;
        let stdout = &mut self.stdout;
        let child = &mut self.child;
        // Write on another thread: Node answers while we write, and its output pipe must be drained.
        let result = std::thread::scope(|scope| {
            let writer = scope.spawn(move || -> io::Result<()> {
                stdin.write_all(text.as_bytes())?;
                stdin.flush()
            });
            let mut read_all = || -> io::Result<Vec<Result<Json, String>>> {
                let mut out = Vec::with_capacity(requests.len());
                let mut line = String::new();
                for i in 0..requests.len() {
                    line.clear();
                    if stdout.read_line(&mut line)? == 0 {
                        return Err(io::Error::other("the harness exited (see its stderr above)"));
                    }
                    let resp: Json = serde_json::from_str(&line)
                        .map_err(|e| io::Error::other(format!("unreadable harness line ({e}): {line}")))?;
                    if resp["id"] != json!(first + i as u64) {
                        return Err(io::Error::other(format!("harness answered out of order: {line}")));
                    }
                    out.push(if resp["ok"] == json!(true) {
                        Ok(resp["result"].clone())
                    } else {
                        Err(resp["error"].as_str().unwrap_or("harness error").to_owned())
                    });
                }
                Ok(out)
            };
            let out = read_all();
            if out.is_err() {
                // The writer may be blocked on a harness that no longer reads: end it so the writer returns.
                let _ = child.kill();
            }
            let written = writer.join().map_err(|_| io::Error::other("writer thread panicked"))?;
            let out = out?;
            written?;
            Ok(out)
        });
        if result.is_err() {
            self.stdin = None;
        }
        result
    }
}

impl Drop for Harness {
    fn drop(&mut self) {
        // Closing stdin ends the harness's read loop; then reap it.
        drop(self.stdin.take());
        let _ = self.child.wait();
    }
}
