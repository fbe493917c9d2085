//! Real recorded traffic: tcpdump on the loopback interface while real daemons talk to
//! the harness, and the ZBXD frames each side sent, read back from the capture file
//! (pcap, Ethernet link type as Linux gives for `lo`, IPv4, TCP streams reassembled by
//! sequence number). What the daemons sent is then checked with the harness's own
//! recognisers — independently of what the harness itself recorded.
#![allow(dead_code)]

use std::collections::BTreeMap;
use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

/// A running tcpdump, stopped (and its file flushed) by [`Capture::stop`] or on drop.
pub struct Capture {
    child: Option<Child>,
    pub file: PathBuf,
}

/// Whether tcpdump can capture here: installed and allowed (root). Otherwise prints a
/// SKIPPED line, or panics when CI=true.
pub fn require_tcpdump(test: &str) -> bool {
    let found = Command::new("tcpdump")
        .arg("--version")
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .is_ok_and(|s| s.success());
    // SAFETY: geteuid(2) has no preconditions and cannot fail.
    let root = unsafe { libc::geteuid() } == 0;
    if found && root {
        return true;
    }
    let why = if found {
        "capturing needs root"
    } else {
        "tcpdump is not installed (apt-get install tcpdump)"
    };
    assert!(
        std::env::var("CI").map_or(true, |v| v != "true"),
        "{test}: {why}, and CI=true"
    );
    eprintln!("SKIPPED: {test}: {why}");
    false
}

impl Capture {
    /// Capture TCP on `ports` of the loopback interface into `file`.
    pub fn start(ports: &[u16], file: &Path) -> Capture {
        let filter = ports
            .iter()
            .map(|p| format!("port {p}"))
            .collect::<Vec<_>>()
            .join(" or ");
        let mut child = Command::new("tcpdump")
            // Immediate mode: without it, packets wait in a kernel ring block that a
            // SIGINT does not flush, and a short exchange is never written.
            .args(["-i", "lo", "--immediate-mode", "-U", "-s", "0", "-n", "-w"])
            .arg(file)
            .arg(format!("tcp and ({filter})"))
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .expect("tcpdump starts");
        // It says "listening on lo" once the capture is armed.
        let stderr = child.stderr.take().expect("stderr");
        let (tx, rx) = std::sync::mpsc::channel();
        std::thread::spawn(move || {
            for line in BufReader::new(stderr).lines().map_while(Result::ok) {
                if line.contains("listening on") {
                    let _ = tx.send(());
                }
            }
        });
        rx.recv_timeout(Duration::from_secs(10))
            .expect("tcpdump is listening within 10 s");
        Capture {
            child: Some(child),
            file: file.to_path_buf(),
        }
    }

    /// Stop capturing; the file is complete afterwards.
    pub fn stop(&mut self) {
        if let Some(mut c) = self.child.take() {
            // The last packets of a closing connection are still on their way.
            std::thread::sleep(Duration::from_millis(300));
            // SAFETY: kill(2) on our own child; SIGINT makes tcpdump flush and exit.
            unsafe { libc::kill(c.id() as i32, libc::SIGINT) };
            let deadline = Instant::now() + Duration::from_secs(10);
            while Instant::now() < deadline {
                if let Ok(Some(_)) = c.try_wait() {
                    return;
                }
                std::thread::sleep(Duration::from_millis(50));
            }
            let _ = c.kill();
            let _ = c.wait();
        }
    }
}

impl Drop for Capture {
    fn drop(&mut self) {
        self.stop();
    }
}

/// One ZBXD frame as one side sent it.
#[derive(Debug, Clone)]
pub struct SentFrame {
    pub from_port: u16,
    pub to_port: u16,
    pub payload: Vec<u8>,
}

/// One direction of one TCP connection: source port, destination port, and the
/// sequence number its data starts at (tells apart connections between the same ports).
type StreamKey = (u16, u16, u32);

/// Every complete ZBXD frame in the capture, per direction of each TCP connection, in
/// stream order. Bytes that are not a frame (a deliberately malformed one) are skipped
/// with the rest of that direction.
pub fn frames(file: &Path) -> Vec<SentFrame> {
    let bytes = std::fs::read(file).expect("capture file");
    let mut streams: BTreeMap<StreamKey, Vec<(u32, Vec<u8>)>> = BTreeMap::new();
    let mut isn: BTreeMap<(u16, u16), u32> = BTreeMap::new();
    for packet in packets(&bytes) {
        let Some(seg) = tcp_segment(packet) else {
            continue;
        };
        // A new connection between the same ports restarts the stream (SYN).
        if seg.syn {
            isn.insert((seg.src, seg.dst), seg.seq.wrapping_add(1));
        }
        let Some(&start) = isn.get(&(seg.src, seg.dst)) else {
            continue;
        };
        if !seg.payload.is_empty() {
            streams
                .entry((seg.src, seg.dst, start))
                .or_default()
                .push((seg.seq.wrapping_sub(start), seg.payload.to_vec()));
        }
    }
    let mut out = Vec::new();
    for ((src, dst, _), mut segs) in streams {
        segs.sort_by_key(|(off, _)| *off);
        let mut data = Vec::new();
        for (off, p) in segs {
            let off = off as usize;
            if off + p.len() <= data.len() {
                continue; // a retransmission
            }
            if off > data.len() {
                break; // a gap: stop at what is contiguous
            }
            data.extend_from_slice(&p[data.len() - off..]);
        }
        split_frames(&data, src, dst, &mut out);
    }
    out
}

fn split_frames(mut data: &[u8], src: u16, dst: u16, out: &mut Vec<SentFrame>) {
    let codec = zbx_conform::frame::ZbxdCodec::default();
    while data.len() >= 13 && data.starts_with(b"ZBXD") {
        let large = data[4] & 0x04 != 0;
        let header = if large { 21 } else { 13 };
        if data.len() < header {
            return;
        }
        let len = if large {
            u64::from_le_bytes(data[5..13].try_into().unwrap_or_default()) as usize
        } else {
            u32::from_le_bytes(data[5..9].try_into().unwrap_or_default()) as usize
        };
        let Some(end) = header.checked_add(len).filter(|e| *e <= data.len()) else {
            return;
        };
        if let Ok(f) = codec.decode_exact(&data[..end]) {
            out.push(SentFrame {
                from_port: src,
                to_port: dst,
                payload: f.payload.to_vec(),
            });
        }
        data = &data[end..];
    }
}

/// The packets of a pcap file (Ethernet link type; micro- or nanosecond magic).
fn packets(b: &[u8]) -> Vec<&[u8]> {
    let mut out = Vec::new();
    if b.len() < 24 {
        return out;
    }
    let magic = u32::from_le_bytes([b[0], b[1], b[2], b[3]]);
    assert!(
        magic == 0xa1b2_c3d4 || magic == 0xa1b2_3c4d,
        "a little-endian pcap file"
    );
    let link = u32::from_le_bytes([b[20], b[21], b[22], b[23]]);
    assert_eq!(link, 1, "Ethernet link type on lo");
    let mut at = 24;
    while at + 16 <= b.len() {
        let caplen = u32::from_le_bytes([b[at + 8], b[at + 9], b[at + 10], b[at + 11]]) as usize;
        let start = at + 16;
        let Some(end) = start.checked_add(caplen).filter(|e| *e <= b.len()) else {
            break;
        };
        out.push(&b[start..end]);
        at = end;
    }
    out
}

struct Segment<'a> {
    src: u16,
    dst: u16,
    seq: u32,
    syn: bool,
    payload: &'a [u8],
}

/// The TCP segment of an Ethernet + IPv4 packet.
fn tcp_segment(p: &[u8]) -> Option<Segment<'_>> {
    let ip = p.get(14..)?;
    if u16::from_be_bytes([p[12], p[13]]) != 0x0800 || ip.first()? >> 4 != 4 || ip[9] != 6 {
        return None;
    }
    let ihl = usize::from(ip[0] & 0x0f) * 4;
    let total = usize::from(u16::from_be_bytes([ip[2], ip[3]]));
    let tcp = ip.get(ihl..total.min(ip.len()))?;
    let off = usize::from(tcp.get(12)? >> 4) * 4;
    Some(Segment {
        src: u16::from_be_bytes([tcp[0], tcp[1]]),
        dst: u16::from_be_bytes([tcp[2], tcp[3]]),
        seq: u32::from_be_bytes([tcp[4], tcp[5], tcp[6], tcp[7]]),
        syn: tcp[13] & 0x02 != 0,
        payload: tcp.get(off..)?,
    })
}
