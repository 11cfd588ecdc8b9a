//! The endpoint as a tower `Layer`: wrapped around an application's service (an axum `Router`, any tower
//! `Service` of HTTP requests), it answers the requests under the endpoint's path and hands every other
//! request to the application, unchanged.
//!
//! ```no_run
//! # async fn run(engine: engineio_server::Engine) {
//! use axum::{Router, routing::get};
//!
//! let app = Router::new().route("/", get(|| async { "hello" })).layer(engine.layer());
//! let listener = tokio::net::TcpListener::bind("0.0.0.0:3000").await.unwrap();
//! axum::serve(listener, app.into_make_service_with_connect_info::<std::net::SocketAddr>()).await.unwrap();
//! # }
//! ```

use std::convert::Infallible;
use std::task::{Context, Poll};

use bytes::Bytes;
use futures_util::TryFutureExt as _;
use futures_util::future::{Either as EitherFuture, MapOk};
use http::{Request, Response};
use http_body::Body;
use http_body_util::Either;

use crate::config::{BoxError, BoxFuture};
use crate::response::ResponseBody;
use crate::service::EngineService;

/// Puts the Engine.IO endpoint in front of a service: see the [module](self) documentation. Made by
/// `Engine::layer` (and `SocketIo::layer` in `socketio-server`).
#[derive(Clone, Debug)]
pub struct EngineLayer {
    pub(crate) service: EngineService,
}

impl<S> tower_layer::Layer<S> for EngineLayer {
    type Service = WithEngine<S>;

    fn layer(&self, inner: S) -> WithEngine<S> {
        WithEngine { engine: self.service.clone(), inner }
    }
}

/// A service with the Engine.IO endpoint in front of it (made by [`EngineLayer`]): requests under the
/// endpoint's path go to the endpoint, the others to the inner service. The response body is either
/// the endpoint's or the inner service's.
#[derive(Clone, Debug)]
pub struct WithEngine<S> {
    engine: EngineService,
    inner: S,
}

/// A response of [`WithEngine`]: the endpoint's body on the left, the inner service's on the right.
pub type EitherResponse<B> = Response<Either<ResponseBody, B>>;

type Wrap<B> = fn(Response<B>) -> EitherResponse<B>;

impl<S, B, RB> tower_service::Service<Request<B>> for WithEngine<S>
where
    S: tower_service::Service<Request<B>, Response = Response<RB>>,
    S::Error: Send + 'static,
    B: Body<Data = Bytes> + Send + 'static,
    B::Error: Into<BoxError>,
    RB: Body<Data = Bytes> + Send + 'static,
    RB::Error: Into<BoxError>,
{
    type Response = EitherResponse<RB>;
    type Error = S::Error;
    type Future = EitherFuture<BoxFuture<'static, Result<EitherResponse<RB>, S::Error>>, MapOk<S::Future, Wrap<RB>>>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), S::Error>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, req: Request<B>) -> Self::Future {
        if self.engine.shared.endpoint.matches(req.uri().path()) {
            let answer = self.engine.call_inner(req);
            EitherFuture::Left(Box::pin(async move {
                let response = answer.await.unwrap_or_else(|never: Infallible| match never {});
                Ok(response.map(Either::Left))
            }))
        } else {
            let wrap: Wrap<RB> = |response| response.map(Either::Right);
            EitherFuture::Right(self.inner.call(req).map_ok(wrap))
        }
    }
}
