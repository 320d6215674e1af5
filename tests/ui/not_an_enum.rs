use outbox::prelude::*;

#[outbox_scope]
pub struct Scope {
    id: i32,
}

#[outbox_category]
pub enum Category<T> {
    #[category(id = 1, retired)]
    Old(T),
}

fn main() {}
