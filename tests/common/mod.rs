//! Helpers shared by the end-to-end tests: they run the real `gdx` binary.

#![allow(dead_code, unreachable_pub)]

use std::path::Path;
use std::process::{Command, Output};

pub fn gdx(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_gdx"))
        .args(args)
        .env_remove("GDX_CATALOG")
        .output()
        .expect("run gdx")
}

pub fn stdout(o: &Output) -> String {
    String::from_utf8_lossy(&o.stdout).into_owned()
}

pub fn simulate(out: &Path, people: usize, enterprises: usize, seed: u64, noise: f64) -> Output {
    let o = gdx(&[
        "simulate",
        "--quiet",
        "--out",
        out.to_str().unwrap(),
        "--people",
        &people.to_string(),
        "--enterprises",
        &enterprises.to_string(),
        "--seed",
        &seed.to_string(),
        "--noise",
        &noise.to_string(),
    ]);
    assert!(
        o.status.success(),
        "simulate failed: {}",
        String::from_utf8_lossy(&o.stderr)
    );
    o
}
