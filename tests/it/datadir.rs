//! The data directory through the real binary: one server per directory however its files are
//! tampered with, and files the server did not write are never removed by it.

use crate::harness::{records, run_to_exit, Server};

#[test]
fn deleting_files_does_not_let_a_second_server_onto_a_locked_directory() {
    let first = Server::start();
    first.write("t", records(3));
    for entry in std::fs::read_dir(first.data_dir()).unwrap() {
        let path = entry.unwrap().path();
        if path.is_file() {
            std::fs::remove_file(&path).unwrap();
        }
    }
    let (status, _, stderr) = run_to_exit(first.command());
    assert!(!status.success(), "second server exited {status}");
    assert!(
        stderr.contains("is locked by another topics process"),
        "stderr: {stderr}"
    );
    first.write("t", records(2));
    assert_eq!(
        first.state("t")["head_seq"],
        5,
        "the first server keeps working"
    );
}
