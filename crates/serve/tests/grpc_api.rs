//! The gRPC protocol on a real server: ModelInfer with raw and typed contents equals
//! `Model::predict` bit for bit; metadata, config, readiness, statistics, repository RPCs; errors
//! are proper status codes; a deadline shorter than the batching delay expires unexecuted.

mod common;

use std::time::Duration;

use common::http::{grpc_connect, options, start, stats};
use common::*;
use quantrec_model::artifact::Artifact;
use quantrec_model::{Plan, Scratch};
use quantrec_serve::proto::grpc_inference_service_client::GrpcInferenceServiceClient;
use quantrec_serve::proto::*;

/// Whether the server reports model "dlrm" (any version) ready.
async fn dlrm_ready(c: &mut GrpcInferenceServiceClient<tonic::transport::Channel>) -> bool {
    let request = ModelReadyRequest {
        name: "dlrm".into(),
        version: String::new(),
    };
    c.model_ready(request).await.unwrap().into_inner().ready
}

#[test]
fn grpc_round_trips_and_control_rpcs() {
    let dir = temp_dir("grpc");
    let config = small_config();
    let bytes = artifact_bytes(&config, &Plan::f32(&config), 6);
    write_version(&dir, "dlrm", 1, &bytes);
    let model = Artifact::from_bytes(bytes).unwrap().model;
    let mut opts = options(&dir);
    opts.max_delay_us = 300_000;
    let server = start(opts);
    let rt = tokio::runtime::Runtime::new().unwrap();
    rt.block_on(async {
        let mut c = grpc_connect(&server, Duration::from_secs(10)).await;
        assert!(
            c.server_live(ServerLiveRequest {})
                .await
                .unwrap()
                .into_inner()
                .live
        );
        assert!(
            c.server_ready(ServerReadyRequest {})
                .await
                .unwrap()
                .into_inner()
                .ready
        );
        assert!(dlrm_ready(&mut c).await);
        let md = c
            .model_metadata(ModelMetadataRequest {
                name: "dlrm".into(),
                version: "1".into(),
            })
            .await
            .unwrap()
            .into_inner();
        assert_eq!(md.versions, vec!["1"]);
        assert_eq!(md.inputs[0].shape, vec![-1, 13]);
        let cfg = c
            .model_config(ModelConfigRequest {
                name: "dlrm".into(),
                version: String::new(),
            })
            .await
            .unwrap()
            .into_inner()
            .config
            .unwrap();
        assert!(cfg.max_batch_size > 0);
        assert_eq!(cfg.input[0].dims, vec![13]);
        assert_eq!(cfg.input[0].data_type, DataType::TypeFp32 as i32);
        assert!(cfg.input[2].optional);

        let b = random_batch(&config, 9, 4);
        let want = model
            .predict_logits(&b, &mut Scratch::new())
            .unwrap()
            .to_vec();
        for raw in [true, false] {
            let r = c
                .model_infer(grpc_request(&b, raw))
                .await
                .unwrap()
                .into_inner();
            assert_eq!(r.id, "g-1");
            assert_eq!(r.outputs.len(), 1);
            assert_eq!(r.outputs[0].name, "logit");
            assert_eq!(r.outputs[0].shape, vec![9]);
            let got: Vec<f32> = r.raw_output_contents[0]
                .chunks_exact(4)
                .map(|x| f32::from_le_bytes(x.try_into().unwrap()))
                .collect();
            assert_eq!(bits(&got), bits(&want), "raw={raw}");
        }

        // Errors are status codes.
        let mut bad = grpc_request(&b, true);
        bad.model_name = "nope".into();
        assert_eq!(
            c.model_infer(bad).await.unwrap_err().code(),
            tonic::Code::NotFound
        );
        let mut bad = grpc_request(&b, true);
        bad.inputs[0].datatype = "FP16".into();
        let e = c.model_infer(bad).await.unwrap_err();
        assert_eq!(e.code(), tonic::Code::InvalidArgument);
        assert!(e.message().contains("datatype FP16"), "{}", e.message());
        let mut bad = grpc_request(&b, true);
        let n = bad.raw_input_contents[1].len();
        bad.raw_input_contents[1].truncate(n - 1);
        assert_eq!(
            c.model_infer(bad).await.unwrap_err().code(),
            tonic::Code::InvalidArgument
        );

        // A deadline shorter than the batching delay expires unexecuted.
        let calls = stats(&server, "dlrm").execution_count;
        let mut req = tonic::Request::new(grpc_request(&b, true));
        req.set_timeout(Duration::from_millis(50));
        let e = c.model_infer(req).await.unwrap_err();
        assert!(
            matches!(
                e.code(),
                tonic::Code::DeadlineExceeded | tonic::Code::Cancelled
            ),
            "{e:?}"
        );
        tokio::time::sleep(Duration::from_millis(400)).await;
        let after = stats(&server, "dlrm").execution_count;
        assert_eq!(after, calls, "the expired request was computed");

        let st = c
            .model_statistics(ModelStatisticsRequest::default())
            .await
            .unwrap()
            .into_inner();
        assert_eq!(st.model_stats[0].inference_count, 18);
        let idx = c
            .repository_index(RepositoryIndexRequest::default())
            .await
            .unwrap()
            .into_inner();
        assert_eq!(idx.models[0].state, "READY");
        c.repository_model_unload(RepositoryModelUnloadRequest {
            model_name: "dlrm".into(),
            ..Default::default()
        })
        .await
        .unwrap();
        assert!(!dlrm_ready(&mut c).await);
        c.repository_model_load(RepositoryModelLoadRequest {
            model_name: "dlrm".into(),
            ..Default::default()
        })
        .await
        .unwrap();
        assert!(c.model_infer(grpc_request(&b, true)).await.is_ok());
        let e = c
            .repository_model_load(RepositoryModelLoadRequest {
                model_name: "absent".into(),
                ..Default::default()
            })
            .await
            .unwrap_err();
        assert_eq!(e.code(), tonic::Code::NotFound);
    });
    drop(server);
}
