use super::*;
use crate::storage::fs::is_no_space;

fn tmp(tag: &str) -> PathBuf {
    let d = std::env::temp_dir().join(format!("topics-faultfs-{tag}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&d);
    std::fs::create_dir_all(&d).unwrap();
    d
}

#[test]
fn every_cut_of_an_atomic_write_leaves_old_or_new() {
    for crash_at in 0..8 {
        let d = tmp(&format!("atomic{crash_at}"));
        let p = d.join("f");
        std::fs::write(&p, b"old").unwrap();
        let fs = FaultFs::new(crash_at);
        let done = fs.write_atomic(&p, b"new").is_ok();
        fs.power_cut();
        let now = std::fs::read(&p).unwrap();
        if done {
            assert_eq!(now, b"new", "a completed atomic write is durable");
        } else {
            assert!(
                now == b"old" || now == b"new",
                "crash at {crash_at}: {now:?}"
            );
        }
    }
}

#[test]
fn unsynced_creation_and_removal_are_undone() {
    let d = tmp("undo");
    std::fs::write(d.join("keep"), b"k").unwrap();
    let fs = FaultFs::new(100);
    fs.write_file(&d.join("new"), b"n").unwrap();
    fs.sync_file(&d.join("new")).unwrap();
    fs.remove(&d.join("keep")).unwrap();
    fs.power_cut();
    assert!(
        !d.join("new").exists(),
        "creation without a directory fsync is lost"
    );
    assert_eq!(
        std::fs::read(d.join("keep")).unwrap(),
        b"k",
        "removal without a directory fsync is lost"
    );
}

/// A durable append file with `synced` bytes synced and `unsynced` appended after them, then
/// the power cut in `mode`; returns what the file holds.
fn cut_with(mode: CutMode, synced: &[u8], unsynced: &[u8], prealloc: u64) -> Vec<u8> {
    let d = tmp(&format!("cut-{mode:?}"));
    let p = d.join("w");
    let fs = FaultFs::with_mode(usize::MAX, mode);
    let mut f = fs.create_append(&p).unwrap();
    f.preallocate(prealloc).unwrap();
    fs.sync_dir(&d).unwrap();
    f.append(synced).unwrap();
    f.sync_data().unwrap();
    f.append(unsynced).unwrap();
    fs.power_cut();
    std::fs::read(&p).unwrap()
}

#[test]
fn each_cut_mode_keeps_its_part_of_the_unsynced_tail() {
    let synced = vec![b's'; 100];
    let unsynced = vec![b'u'; 1000]; // bytes 100..1100: sector boundaries at 512 and 1024
    let clean = cut_with(CutMode::Clean, &synced, &unsynced, 2048);
    assert_eq!(clean.len(), 2048, "preallocated length survives");
    assert!(clean[..100] == synced[..] && clean[100..].iter().all(|b| *b == 0));
    let torn = cut_with(CutMode::TornPrefix, &synced, &unsynced, 2048);
    assert!(
        torn[100..600].iter().all(|b| *b == b'u'),
        "a prefix survives"
    );
    assert!(torn[600..].iter().all(|b| *b == 0));
    let ooo = cut_with(CutMode::OutOfOrder, &synced, &unsynced, 2048);
    assert_eq!(ooo[..100], synced[..], "synced bytes never change");
    assert!(
        ooo[100..512].iter().all(|b| *b == 0),
        "the first half is lost"
    );
    assert!(
        ooo[512..1100].iter().all(|b| *b == b'u'),
        "the second half survives"
    );
    assert!(ooo[1100..].iter().all(|b| *b == 0));
    let junk = cut_with(CutMode::OutOfOrderGarbage, &synced, &unsynced, 2048);
    assert!(
        junk[100..512].iter().any(|b| *b != 0 && *b != b'u'),
        "garbage"
    );
    assert_eq!(junk[512..1100], ooo[512..1100]);
}

#[test]
fn out_of_order_loss_inside_one_sector_loses_all_of_it() {
    let ooo = cut_with(CutMode::OutOfOrder, &[b's'; 10], &[b'u'; 200], 0);
    assert_eq!(
        ooo,
        vec![b's'; 10],
        "nothing later survives without the earlier bytes"
    );
}

#[test]
fn the_space_budget_fails_allocations_with_enospc_until_space_is_freed() {
    let d = tmp("space");
    let fs = FaultFs::new(usize::MAX);
    let mut f = fs.create_append(&d.join("w")).unwrap();
    fs.set_space(Some(100));
    let e = f.preallocate(200).unwrap_err();
    assert!(is_no_space(&e), "{e}");
    assert_eq!(
        fs.space_left(),
        Some(100),
        "a failed preallocation takes nothing"
    );
    f.preallocate(64).unwrap();
    f.append(&[1; 60]).unwrap();
    f.append(&[2; 30]).unwrap(); // 4 inside the preallocation, 26 past it
    assert_eq!(fs.space_left(), Some(10));
    let e = f.append(&[3; 20]).unwrap_err();
    assert!(is_no_space(&e), "{e}");
    let on_disk = std::fs::read(d.join("w")).unwrap();
    assert_eq!(
        on_disk.len(),
        100,
        "a short write: the part that fitted landed"
    );
    assert_eq!(on_disk[90..], [3; 10]);
    let e = fs.write_file(&d.join("s"), &[4; 10]).unwrap_err();
    assert!(is_no_space(&e), "{e}");
    fs.remove(&d.join("s")).unwrap();
    fs.set_space(Some(50)); // space freed
    f.append(&[3; 20]).unwrap();
    fs.write_file(&d.join("s"), &[4; 10]).unwrap();
    assert_eq!(fs.space_left(), Some(30));
    f.shrink_to_written().unwrap();
    assert_eq!(
        fs.space_left(),
        Some(30),
        "nothing past the end to give back"
    );
    fs.remove(&d.join("s")).unwrap();
    assert_eq!(fs.space_left(), Some(40), "a removal gives its bytes back");
}

#[test]
fn an_injected_eio_fails_only_its_operation() {
    let d = tmp("eio");
    let fs = FaultFs::new(usize::MAX);
    let mut f = fs.create_append(&d.join("w")).unwrap();
    fs.inject_eio(EioAt::HeaderSync);
    f.append(b"header").unwrap();
    let e = f.sync_data().unwrap_err();
    assert_eq!(e.raw_os_error(), Some(libc::EIO));
    assert!(!fs.eio_pending());
    f.sync_data().unwrap();
    fs.inject_eio(EioAt::ClosingMarkSync);
    f.sync_data().unwrap();
    let mut mark = Vec::new();
    crate::storage::frame::encode_sync(&mut mark, 6, 0, true);
    f.append(&mark).unwrap();
    assert!(f.sync_data().is_err(), "the sync after a closing mark");
    fs.inject_eio(EioAt::Shrink);
    assert!(f.shrink_to_written().is_err());
    f.shrink_to_written().unwrap();
}
