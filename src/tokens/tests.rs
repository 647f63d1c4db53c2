use super::*;
use crate::usage::labels;

#[test]
fn increases_are_counted_sample_by_sample_across_restarts_and_chunks() {
    let series = Series {
        identity: "a".into(),
        pod: ("ns", "chat-0"),
        model: "llama",
        direction: Direction::Input,
    };
    let window = Interval::new(3600, 10_800);
    let mut collector = TokenCollector::default();
    // 3500 s is before the window: a baseline. Then +50, +250, a restart to 20 (+20), and in
    // the next chunk +100; the sample at 10 800 is past the window.
    collector.add(
        &series,
        [(3500.0, 100.0), (3600.0, 150.0), (5000.0, 400.0)],
        window,
    );
    collector.add(
        &series,
        [(7100.0, 20.0), (7300.5, 120.0), (10_800.0, 500.0)],
        window,
    );
    // Another series of the same pod and model (a second engine process) adds up.
    let other = Series {
        identity: "b".into(),
        direction: Direction::Output,
        ..series
    };
    collector.add(&other, [(3700.0, 7.0), (3800.0, 9.0)], window);
    let index = collector.finish();
    let hour = |start| index.served("ns", "chat-0", Interval::new(start, start + 3600));
    assert_eq!(
        hour(3600),
        vec![Served {
            model: "llama".into(),
            input: 320,
            output: 2
        }]
    );
    assert_eq!(hour(7200)[0].input, 100);
    assert_eq!(hour(7200)[0].output, 0);
    assert!(hour(10_800).is_empty(), "past the window");
    assert!(
        index
            .served("ns", "other", Interval::new(3600, 7200))
            .is_empty()
    );
}

#[test]
fn series_name_their_engine_model_and_pod() {
    assert_eq!(
        counter("vllm:generation_tokens_total"),
        Some(("vllm", Direction::Output))
    );
    assert_eq!(
        counter("tgi_request_input_length_sum"),
        Some(("tgi", Direction::Input))
    );
    assert_eq!(counter("tgi_request_input_length_count"), None);
    let vllm = labels(&[("model_name", "meta-llama/Llama-3.1-8B"), ("pod", "p")]);
    assert_eq!(served_model(&vllm, "vllm"), "meta-llama/Llama-3.1-8B");
    assert_eq!(served_model(&labels(&[]), "tgi"), "tgi");
    let scraped = labels(&[
        ("pod", "prometheus-0"),
        ("namespace", "monitoring"),
        ("exported_pod", "chat-0"),
        ("exported_namespace", "ns"),
    ]);
    assert_eq!(
        serving_pod(&scraped),
        Some(("ns".to_string(), "chat-0".to_string()))
    );
    assert_eq!(serving_pod(&labels(&[("model_name", "x")])), None);
}
