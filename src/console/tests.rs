use rust_decimal_macros::dec;

use super::*;

fn figures(
    hours: Decimal,
    used: Option<Decimal>,
    cost: Option<Decimal>,
    idle: Option<Decimal>,
) -> Figures {
    Figures {
        gpu_hours: hours,
        used_gpu_hours: used,
        cost,
        idle_cost: idle,
        unpriced_gpu_hours: Decimal::ZERO,
    }
}

fn page() -> Page {
    Page {
        as_of: 1_764_590_400,
        window: Interval::new(1_764_547_200, 1_764_590_400),
        currency: ("USD".into(), 2),
        rounding: Rounding::HalfEven,
        drill: Drill::default(),
        grouped: None,
        spend_hidden: 0,
        spend: vec![Row {
            group: vec!["cc-<100>".into()],
            figures: figures(
                dec!(24.0000),
                Some(dec!(6.0000)),
                Some(dec!(96.00)),
                Some(dec!(72.00)),
            ),
        }],
        budgets: vec![BudgetLine {
            scope: "cost center cc-<100>".into(),
            spent: dec!(96),
            projected: dec!(2976.004),
            budget: dec!(2500),
            by_day: vec![dec!(96)],
        }],
        month_days: 31,
        by_model: vec![Row {
            group: vec!["GH200".into(), "on-demand".into()],
            figures: Figures {
                unpriced_gpu_hours: dec!(12.0000),
                ..figures(dec!(12.0000), None, None, None)
            },
        }],
        idle: Vec::new(),
        unallocated: Vec::new(),
        tokens: Vec::new(),
        gate: Gate::default(),
        warnings: vec!["model <GH200> has no price".into()],
    }
}

#[test]
fn the_page_shows_figures_as_given_escapes_names_and_links_the_drill_down() {
    let html = render(&page());
    assert!(html.starts_with("<!doctype html>"));
    // Names from the cluster never become markup.
    assert!(!html.contains("cc-<100>") && html.contains("cc-&lt;100&gt;"));
    // Figures as the engine printed them; money of budgets rounded in the card's currency.
    assert!(
        html.contains("<td class=\"n\">24.0000</td><td class=\"n\">96.00</td>"),
        "{html}"
    );
    assert!(
        html.contains("2976.00 USD") && html.contains("-476.00 USD"),
        "{html}"
    );
    assert!(html.contains("25.0 %"), "utilization 6 of 24 hours");
    // Unpriced is said, never 0.
    assert!(html.contains("unpriced (12.0000 h)"), "{html}");
    // Drill-down and downloads for what is on screen.
    assert!(html.contains("href=\"/?from=2025-12-01T00%3A00%3A00Z&amp;to=2025-12-01T12%3A00%3A00Z&amp;cost_center=cc-%3C100%3E\""), "{html}");
    assert!(
        html.contains("/api/v1/chargeback?format=focus&amp;from="),
        "{html}"
    );
    // Nothing is fetched from anywhere: no script, no external URL.
    assert!(!html.contains("<script") && !html.contains("http://") && !html.contains("https://"));
}

#[test]
fn a_drill_down_level_keeps_its_own_rows() {
    let drill = Drill {
        cost_center: Some("cc-100".into()),
        namespace: None,
    };
    assert_eq!(
        drill.group_by(),
        [GroupKey::CostCenter, GroupKey::Namespace]
    );
    let filter = drill.filter();
    let keys = drill.group_by();
    assert!(filter.keeps(keys, ["cc-100", "chat"].into_iter()));
    assert!(!filter.keeps(keys, ["cc-200", "chat"].into_iter()));
}

#[test]
fn a_grouping_asked_for_gets_its_table_and_downloads() {
    let mut page = page();
    page.grouped = Some((
        vec![GroupKey::GpuModel, GroupKey::Node],
        vec![Row {
            group: vec!["H100-80GB".into(), "node-<1>".into()],
            figures: figures(dec!(8.0000), None, Some(dec!(24.00)), None),
        }],
    ));
    let html = render(&page);
    assert!(html.contains("<h2>Spend by gpu_model, node</h2>"), "{html}");
    assert!(
        html.contains(
            "<th scope=\"row\">H100-80GB</th><td>node-&lt;1&gt;</td><td class=\"n\">8.0000</td>"
        ),
        "{html}"
    );
    assert!(html.contains("format=csv&amp;from=2025-12-01T00%3A00%3A00Z&amp;to=2025-12-01T12%3A00%3A00Z&amp;group_by=gpu_model%2Cnode"), "{html}");
    assert!(
        html.contains("name=\"group_by\" value=\"gpu_model,node\""),
        "{html}"
    );
}

#[test]
fn served_models_show_their_cost_per_million_tokens_and_never_a_zero() {
    let mut page = page();
    assert!(
        !render(&page).contains("id=\"tokens\""),
        "no counters, no section"
    );
    page.tokens = vec![
        TokenRow {
            period: Interval::new(1_764_586_800, 1_764_590_400),
            group: vec!["llama-<8b>".into(), "cc-100".into(), "chat".into()],
            figures: figures(dec!(30.0000), None, Some(dec!(105.00)), Some(dec!(78.75))),
            input: 431_700,
            output: 143_900,
            per_million: (Some(dec!(182.4183)), Some(dec!(729.6734))),
        },
        TokenRow {
            period: Interval::new(1_764_586_800, 1_764_590_400),
            group: vec!["tiny-idle".into(), "cc-100".into(), "chat".into()],
            figures: figures(dec!(6.0000), None, Some(dec!(4.80)), None),
            input: 0,
            output: 0,
            per_million: (None, None),
        },
    ];
    let html = render(&page);
    assert!(html.contains("llama-&lt;8b&gt;"), "{html}");
    assert!(
        html.contains(
            "From <time>2025-12-01T11:00:00Z</time> to <time>2025-12-01T12:00:00Z</time>"
        ),
        "{html}"
    );
    assert!(
        html.contains(
            "<td class=\"n\">105.00</td><td class=\"n\">78.75</td><td class=\"n\">431700</td><td class=\"n\">143900</td><td class=\"n\">182.4183</td><td class=\"n\">729.6734</td>"
        ),
        "{html}"
    );
    assert!(
        html.contains("<td class=\"n\">0</td><td class=\"n\">0</td><td class=\"n\">—</td><td class=\"n\">—</td>"),
        "{html}"
    );
    assert!(
        html.contains("/api/v1/tokens?format=csv&amp;from="),
        "{html}"
    );
}

#[test]
fn a_budget_projected_over_by_a_cent_is_drawn_over_at_any_size() {
    // 2^53 dollars: at this size `f64` cannot tell the budget from a cent more, the page must.
    let mut page = page();
    page.budgets[0].budget = dec!(9007199254740992.00);
    page.budgets[0].projected = dec!(9007199254740992.01);
    let html = render(&page);
    assert!(html.contains("class=\"projected over\""), "{html}");
    assert!(
        html.contains("<span class=\"over\">-0.01 USD</span>"),
        "{html}"
    );
}

#[test]
fn what_the_console_cannot_show_is_said_on_a_page_with_the_way_back() {
    let typed = Typed {
        from: Some("last \"tuesday\""),
        to: None,
        group_by: Some("pod"),
        cost_center: Some("cc-1"),
        namespace: Some(""),
    };
    let html = refused("from: \"<b>&\" is not a time", &typed);
    assert!(html.starts_with("<!doctype html>"), "{html}");
    assert!(
        html.contains(
            "<p class=\"over\" role=\"alert\">from: &quot;&lt;b&gt;&amp;&quot; is not a time</p>"
        ),
        "{html}"
    );
    assert!(!html.contains("<b>"), "{html}");
    // The form as it was typed, to mend and send again; the drill-down kept, an empty one not.
    assert!(html.contains("<form class=\"window\" method=\"get\" action=\"/\">"));
    assert!(
        html.contains("<input name=\"from\" value=\"last &quot;tuesday&quot;\">"),
        "{html}"
    );
    assert!(html.contains("<input name=\"to\" value=\"\">"), "{html}");
    assert!(html.contains("name=\"group_by\" value=\"pod\""), "{html}");
    assert!(
        html.contains("<input type=\"hidden\" name=\"cost_center\" value=\"cc-1\">"),
        "{html}"
    );
    assert!(!html.contains("name=\"namespace\""), "{html}");
    assert!(
        html.contains("<a href=\"/\">This month's spend</a>"),
        "{html}"
    );
}
