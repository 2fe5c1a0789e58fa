use super::*;

fn p(n: u64) -> ProgramId {
    ProgramId::new(n).unwrap()
}

fn z(n: usize) -> ZoneId {
    ZoneId::from_index(n)
}

fn req(program: u64, priority: Priority, zones: &[usize]) -> Request {
    Request {
        program: p(program),
        priority,
        zones: zones.iter().map(|&i| z(i)).collect(),
        on_busy: OnBusy::Wait,
        on_preempt: OnPreempt::Pause,
    }
}

fn assign(zone: usize, program: Option<u64>) -> Change {
    Change::Assign { zone: z(zone), program: program.map(p) }
}

#[test]
fn a_program_takes_its_free_zones() {
    let mut a = Arbiter::new(2);
    let changes = a.request(req(1, Priority::Scheduled, &[0, 1])).unwrap();
    assert_eq!(changes, vec![assign(0, Some(1)), assign(1, Some(1))]);
    assert_eq!(a.zones_of(p(1)), vec![z(0), z(1)]);
}

#[test]
fn emergency_takes_one_zone_and_the_scheduled_program_keeps_the_other() {
    let mut a = Arbiter::new(2);
    a.request(req(1, Priority::Scheduled, &[0])).unwrap();
    a.request(req(2, Priority::Scheduled, &[1])).unwrap();
    let changes = a.request(req(3, Priority::Emergency, &[0])).unwrap();
    assert_eq!(changes, vec![assign(0, Some(3)), Change::Paused { program: p(1) }]);
    assert_eq!(a.owner(z(1)), Some(p(2)));
}

#[test]
fn preempted_scheduled_program_resumes_after_emergency() {
    let mut a = Arbiter::new(1);
    a.request(req(1, Priority::Scheduled, &[0])).unwrap();
    a.request(req(2, Priority::Emergency, &[0])).unwrap();
    let changes = a.release(p(2));
    assert_eq!(changes, vec![assign(0, Some(1)), Change::Resumed { program: p(1) }]);
}

#[test]
fn a_program_losing_one_of_two_zones_keeps_playing_on_the_other() {
    let mut a = Arbiter::new(2);
    a.request(req(1, Priority::Scheduled, &[0, 1])).unwrap();
    let changes = a.request(req(2, Priority::Live, &[1])).unwrap();
    assert_eq!(changes, vec![assign(1, Some(2))]);
    assert_eq!(a.zones_of(p(1)), vec![z(0)]);
    assert_eq!(a.release(p(2)), vec![assign(1, Some(1))]);
}

#[test]
fn equal_priority_first_come_keeps_the_zone_and_the_newcomer_waits() {
    let mut a = Arbiter::new(1);
    a.request(req(1, Priority::Scheduled, &[0])).unwrap();
    assert_eq!(a.request(req(2, Priority::Scheduled, &[0])).unwrap(), vec![]);
    assert_eq!(a.owner(z(0)), Some(p(1)));
    // Waiting, not resumed: it never played.
    assert_eq!(a.release(p(1)), vec![assign(0, Some(2))]);
}

#[test]
fn on_busy_refuse_is_refused_by_an_equal_or_higher_holder_only() {
    let mut a = Arbiter::new(2);
    a.request(req(1, Priority::Announcement, &[0])).unwrap();
    let mut r = req(2, Priority::Announcement, &[0, 1]);
    r.on_busy = OnBusy::Refuse;
    assert_eq!(a.request(r.clone()), Err(Refused { busy: vec![(z(0), p(1), Priority::Announcement)] }));
    assert!(!a.contains(p(2)));
    r.priority = Priority::Emergency;
    assert!(a.request(r).is_ok());
    assert_eq!(a.owner(z(0)), Some(p(2)));
}

#[test]
fn a_lower_program_waits_behind_a_higher_one() {
    let mut a = Arbiter::new(1);
    a.request(req(1, Priority::Emergency, &[0])).unwrap();
    assert_eq!(a.request(req(2, Priority::Background, &[0])).unwrap(), vec![]);
    assert_eq!(a.release(p(1)), vec![assign(0, Some(2))]);
}

#[test]
fn on_preempt_drop_ends_the_program_instead_of_pausing() {
    let mut a = Arbiter::new(2);
    let mut r = req(1, Priority::Scheduled, &[0, 1]);
    r.on_preempt = OnPreempt::Drop;
    a.request(r).unwrap();
    let changes = a.request(req(2, Priority::Emergency, &[0])).unwrap();
    assert_eq!(changes, vec![assign(0, Some(2)), assign(1, None), Change::Dropped { program: p(1), by: p(2) }]);
    assert!(!a.contains(p(1)));
    assert_eq!(a.release(p(2)), vec![assign(0, None)]);
}

#[test]
fn a_dropped_program_frees_its_zones_for_waiting_programs() {
    let mut a = Arbiter::new(2);
    let mut r = req(1, Priority::Scheduled, &[0, 1]);
    r.on_preempt = OnPreempt::Drop;
    a.request(r).unwrap();
    a.request(req(2, Priority::Background, &[1])).unwrap();
    let changes = a.request(req(3, Priority::Emergency, &[0])).unwrap();
    assert_eq!(changes, vec![assign(0, Some(3)), assign(1, Some(2)), Change::Dropped { program: p(1), by: p(3) }]);
}

#[test]
fn emergency_over_live_over_announcement_stack_and_unwind_in_order() {
    let mut a = Arbiter::new(1);
    a.request(req(1, Priority::Scheduled, &[0])).unwrap();
    a.request(req(2, Priority::Announcement, &[0])).unwrap();
    a.request(req(3, Priority::Live, &[0])).unwrap();
    a.request(req(4, Priority::Emergency, &[0])).unwrap();
    assert_eq!(a.owner(z(0)), Some(p(4)));
    a.release(p(4));
    assert_eq!(a.owner(z(0)), Some(p(3)));
    a.release(p(3));
    assert_eq!(a.owner(z(0)), Some(p(2)));
    a.release(p(2));
    assert_eq!(a.owner(z(0)), Some(p(1)));
}

#[test]
fn a_retired_zone_goes_idle_and_its_program_keeps_its_other_zones() {
    let mut a = Arbiter::new(2);
    a.request(req(1, Priority::Scheduled, &[0, 1])).unwrap();
    assert_eq!(a.retire_zone(z(1)), vec![assign(1, None)]);
    assert_eq!(a.zones_of(p(1)), vec![z(0)]);
    assert_eq!(a.add_zone(), z(2));
    assert_eq!(a.owner(z(2)), None);
}

#[test]
fn a_branch_takes_the_cut_zone_and_resumes_there_when_the_emergency_ends() {
    let mut a = Arbiter::new(2);
    a.request(req(1, Priority::Scheduled, &[0, 1])).unwrap();
    a.request(req(2, Priority::Emergency, &[0])).unwrap();
    // Zone 0 now belongs to the branch's wait, not to programme 1.
    assert_eq!(a.split(p(1), p(3), &[z(0)]), vec![]);
    assert_eq!(a.wanted_by(p(1)), vec![z(1)]);
    assert_eq!(a.wanted_by(p(3)), vec![z(0)]);
    assert_eq!(a.priority_of(p(3)), Some(Priority::Scheduled));
    assert_eq!(a.release(p(2)), vec![assign(0, Some(3)), Change::Resumed { program: p(3) }]);
    assert_eq!(a.zones_of(p(1)), vec![z(1)]);
}

#[test]
fn a_branch_keeps_its_programmes_place_among_equals() {
    let mut a = Arbiter::new(2);
    a.request(req(1, Priority::Scheduled, &[0, 1])).unwrap();
    a.request(req(2, Priority::Emergency, &[0])).unwrap();
    // An equal programme arrives after 1 and waits for zone 0 too.
    a.request(req(4, Priority::Scheduled, &[0])).unwrap();
    a.split(p(1), p(3), &[z(0)]);
    a.release(p(2));
    assert_eq!(a.owner(z(0)), Some(p(3)), "the branch came first, as its programme did");
    // An equal programme that came before 1 still beats the branch.
    let mut b = Arbiter::new(2);
    b.request(req(5, Priority::Scheduled, &[0])).unwrap();
    b.request(req(1, Priority::Scheduled, &[0, 1])).unwrap();
    b.split(p(1), p(3), &[z(0)]);
    assert_eq!(b.owner(z(0)), Some(p(5)));
    b.release(p(5));
    assert_eq!(b.owner(z(0)), Some(p(3)));
}

#[test]
fn zones_cut_together_join_one_branch_and_unknown_splits_do_nothing() {
    let mut a = Arbiter::new(3);
    a.request(req(1, Priority::Scheduled, &[0, 1, 2])).unwrap();
    a.request(req(2, Priority::Emergency, &[0, 1])).unwrap();
    a.split(p(1), p(3), &[z(0)]);
    a.split(p(1), p(3), &[z(1)]);
    assert_eq!(a.wanted_by(p(3)), vec![z(0), z(1)]);
    assert_eq!(a.split(p(9), p(10), &[z(0)]), vec![]);
    assert_eq!(a.split(p(1), p(10), &[z(0)]), vec![], "programme 1 no longer wants zone 0");
    assert!(!a.contains(p(10)));
}
