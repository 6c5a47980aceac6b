//! Effective priority (API.md §2). Scheduling hint only; never affects order or visibility.

/// Inputs of the computation, all in ms.
pub struct PriorityInputs {
    pub priority: Option<i32>,
    pub auto_priority: bool,
    pub last_consumed_ms: Option<i64>,
    pub now_ms: i64,
}

/// The tunables of the computation (config section `[priority]`).
#[derive(Debug, Clone, Copy)]
pub struct PriorityParams {
    pub clamp: f64,
    pub auto_max: f64,
    pub half_life_ms: f64,
    pub idle_cutoff_ms: i64,
}

impl Default for PriorityParams {
    fn default() -> Self {
        Self {
            clamp: 1000.0,
            auto_max: 500.0,
            half_life_ms: 30_000.0,
            idle_cutoff_ms: 300_000,
        }
    }
}

/// `round(clamp(priority ?? 0, ±clamp) + auto)`.
pub fn effective_priority(p: &PriorityInputs, k: &PriorityParams) -> i64 {
    let base = f64::from(p.priority.unwrap_or(0)).clamp(-k.clamp, k.clamp);
    let auto = match (p.priority, p.auto_priority, p.last_consumed_ms) {
        (None, true, Some(last)) => {
            let idle = (p.now_ms - last).max(0);
            if idle < k.idle_cutoff_ms {
                k.auto_max * (-(idle as f64) / k.half_life_ms.max(1.0)).exp2()
            } else {
                0.0
            }
        }
        _ => 0.0,
    };
    (base + auto).round() as i64
}

#[cfg(test)]
mod tests {
    use super::*;

    fn eff(priority: Option<i32>, auto: bool, last: Option<i64>, now: i64) -> i64 {
        effective_priority(
            &PriorityInputs {
                priority,
                auto_priority: auto,
                last_consumed_ms: last,
                now_ms: now,
            },
            &PriorityParams::default(),
        )
    }

    #[test]
    fn explicit_priority_is_clamped_and_disables_auto() {
        assert_eq!(eff(Some(5000), true, Some(0), 0), 1000);
        assert_eq!(eff(Some(-5000), true, None, 0), -1000);
        assert_eq!(eff(Some(10), true, Some(0), 0), 10);
    }

    #[test]
    fn auto_decays_with_half_life_and_cuts_off() {
        assert_eq!(eff(None, true, Some(1000), 1000), 500);
        assert_eq!(eff(None, true, Some(0), 30_000), 250);
        assert_eq!(eff(None, true, Some(0), 300_000), 0);
        assert_eq!(eff(None, false, Some(0), 0), 0);
        assert_eq!(eff(None, true, None, 0), 0);
    }
}
