use deimos::state::*;
use std::time::Instant;
#[test]
fn probe() {
    let n: usize = std::env::var("N").unwrap().parse().unwrap();
    let base = std::env::var("BASE").unwrap_or("/tmp".into());
    let dir = tempfile::tempdir_in(base).unwrap();
    let root = StateRoot::new(dir.path()).with_durability(Durability::NoSync);
    let t = Instant::now();
    seed_exited_containers(&root, "b", n).unwrap();
    eprintln!("seed {:?}", t.elapsed());
    let later = time::OffsetDateTime::now_utc() + time::Duration::seconds(1);
    let t = Instant::now();
    let l = root.exited_before(later, &Scope::All).unwrap();
    eprintln!("scan {} {:?}", l.len(), t.elapsed());
    let t = Instant::now();
    let r = root.remove_exited_before(later, &Scope::All).unwrap();
    eprintln!("remove {} {:?}", r.removed.len(), t.elapsed());
}
