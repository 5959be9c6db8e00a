use deimos::state::*;
use std::time::Instant;
#[test]
fn probe() {
    let later = time::OffsetDateTime::now_utc() + time::Duration::seconds(1);
    if let Ok(path) = std::env::var("REMOVE_AT") {
        let root = StateRoot::new(&path).with_durability(Durability::NoSync);
        let t = Instant::now();
        let r = root.remove_exited_before(later, &Scope::All).unwrap();
        eprintln!("remove {} {:?}", r.removed.len(), t.elapsed());
        return;
    }
    let n: usize = std::env::var("N").unwrap().parse().unwrap();
    let base = std::env::var("BASE").unwrap_or("/tmp".into());
    let dir = tempfile::tempdir_in(base).unwrap().keep();
    let root = StateRoot::new(&dir).with_durability(Durability::NoSync);
    let t = Instant::now();
    seed_exited_containers(&root, "b", n).unwrap();
    eprintln!("seed {:?} at {}", t.elapsed(), dir.display());
}
