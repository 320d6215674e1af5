//! `Registry::validate` finds every kind of problem, all at once.

use outbox::__private::{CategoryInfo, PoisonPolicy, Receiver, ReceiverRegistration, ScopeInfo};
use outbox::{ControlDelivery, Delivery, ReceiverError, Registry, RegistryProblem};

fn leak<T>(value: T) -> &'static T {
    Box::leak(Box::new(value))
}

fn scope(id: i32, name: &'static str, module: &'static str) -> &'static ScopeInfo {
    leak(ScopeInfo { id, name, declared_in: module })
}

fn category(id: i32, name: &'static str, scope: Option<&'static ScopeInfo>, module: &'static str) -> CategoryInfo {
    CategoryInfo {
        id,
        name,
        scope,
        retired: false,
        discard: false,
        transactional: false,
        max_attempts: None,
        on_poison: PoisonPolicy::Block,
        declared_in: module,
    }
}

fn ok(_: &mut Delivery<'_>) -> Result<(), ReceiverError> {
    Ok(())
}

fn ok_control(_: &mut ControlDelivery<'_>) -> Result<(), ReceiverError> {
    Ok(())
}

fn receiver(
    category: i32,
    receiver: Receiver,
    name: &'static str,
    module: &'static str,
) -> &'static ReceiverRegistration {
    leak(ReceiverRegistration { category, receiver, name, registered_in: module })
}

#[test]
fn every_problem_is_reported_together() {
    let org = scope(0, "Organization", "app");
    let org_again = scope(0, "Org", "other_crate");
    let user = scope(1, "User", "app");
    let categories = vec![
        leak(category(1, "TeamUpdate", Some(org), "app")),
        leak(category(1, "TeamUpdate", Some(org), "models_crate")), // same id in two crates
        leak(category(2, "UserUpdate", Some(user), "app")),         // no receiver
        leak(CategoryInfo { discard: true, ..category(3, "AuditLog", Some(user), "app") }), // discard + receiver
        leak(CategoryInfo { retired: true, ..category(4, "Old", None, "app") }),
        leak(category(5, "Fine", Some(user), "app")),
        leak(CategoryInfo { discard: true, ..category(6, "Dropped", Some(user), "app") }),
    ];
    let receivers = vec![
        receiver(1, Receiver::Region(ok), "first", "app::receivers"),
        receiver(1, Receiver::Region(ok), "second", "other::receivers"), // two for one (category, direction)
        receiver(1, Receiver::Control(ok_control), "control", "app::receivers"), // other direction: fine
        receiver(3, Receiver::Region(ok), "audit", "app"),
        receiver(4, Receiver::Region(ok), "old", "app"),    // retired
        receiver(99, Receiver::Region(ok), "ghost", "app"), // undeclared
        receiver(5, Receiver::Control(ok_control), "fine", "app"),
    ];
    let registry = Registry::from_parts(vec![org, org_again, user], categories, receivers);
    let err = registry.validate().unwrap_err();
    let problems = &err.problems;

    assert!(problems.contains(&RegistryProblem::DuplicateScope {
        id: 0,
        first: "app::Organization".into(),
        second: "other_crate::Org".into()
    }));
    assert!(problems.contains(&RegistryProblem::DuplicateCategory {
        id: 1,
        first: "app::TeamUpdate".into(),
        second: "models_crate::TeamUpdate".into()
    }));
    assert!(problems.iter().any(|p| matches!(p,
        RegistryProblem::DuplicateReceiver { category, direction: outbox::Direction::Region, first, second, .. }
            if category == "TeamUpdate" && first == "first" && second == "second")));
    assert!(problems.contains(&RegistryProblem::MissingReceiver { category: "UserUpdate".into(), id: 2 }));
    assert!(problems
        .contains(&RegistryProblem::DiscardWithReceiver { category: "AuditLog".into(), receiver: "audit".into() }));
    assert!(problems
        .iter()
        .any(|p| matches!(p, RegistryProblem::ReceiverForUnusableCategory { id: 4, why: "retired", .. })));
    assert!(problems.iter().any(|p| matches!(p, RegistryProblem::ReceiverForUnusableCategory { id: 99, .. })));
    assert_eq!(problems.len(), 7, "exactly these problems: {problems:#?}");

    let message = err.to_string();
    assert!(message.starts_with("the outbox registry has 7 problem(s):"), "{message}");
    assert!(message.contains("category `UserUpdate` (id 2) has no receiver; add `region = path`"), "{message}");
}

#[test]
fn a_clean_registry_validates_and_answers_lookups() {
    let org = scope(0, "Organization", "app");
    let registry = Registry::from_parts(
        vec![org],
        vec![
            leak(category(1, "TeamUpdate", Some(org), "app")),
            leak(CategoryInfo { retired: true, ..category(2, "Old", None, "app") }),
        ],
        vec![receiver(1, Receiver::Region(ok), "team", "app")],
    );
    registry.validate().unwrap();
    assert_eq!(registry.category_named("TeamUpdate").map(|c| c.id), Some(1));
    assert_eq!(registry.scope_named("Organization").map(|s| s.id), Some(0));
    assert!(registry.receiver(1, outbox::Direction::Region).is_some());
    assert!(registry.receiver(1, outbox::Direction::Control).is_none());
}
