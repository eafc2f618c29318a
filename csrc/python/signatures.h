// The Python signature of every op (its name, argument names and defaults), written once for
// both modules: cpu_X.cpp and cuda_X.cpp each hand their own functions for op X to def_X, so
// fastconv._C and fastconv._cuda cannot drift apart. The functions take their arrays and flags as
// py::handle and check them themselves (checks.h, shapes.h): pybind11's own casters would read
// None as False and answer a bad type with a signature dump.
//
// Size pairs likewise: every Pair parameter (stride, padding, dilation, filter) arrives as a
// PairArg, any object, and is parsed by pair_arg under the name its py::arg gives it, while the
// signature (and so the stubs) still says tuple[int, int].
#pragma once
#include <pybind11/pybind11.h>

#include <array>
#include <cstddef>
#include <utility>

#include "python/shapes.h"

namespace fastconv::bind {
namespace py = pybind11;

// Any object, shown as tuple[int, int] in the signature.
struct PairArg : py::object {
  using py::object::object;
  static bool check_(py::handle h) { return h.ptr() != nullptr; }
};

}  // namespace fastconv::bind

namespace pybind11::detail {
template <>
struct handle_type_name<fastconv::bind::PairArg> {
  static constexpr auto name = const_name("tuple[int, int]");
};
}  // namespace pybind11::detail

namespace fastconv::bind {

// What the bound function's parameter of type T arrives as, and how it becomes a T.
template <typename T>
struct Arrival {
  using type = T;
  static T parse(type v, const char*) { return v; }
};
template <>
struct Arrival<Pair> {
  using type = PairArg;
  static Pair parse(const PairArg& v, const char* name) { return pair_arg(v, name); }
};

template <typename R, typename... A, std::size_t... I>
auto pairs_parsed(R (*f)(A...), std::array<const char*, sizeof...(A)> names,
                  std::index_sequence<I...>) {
  return [f, names](typename Arrival<A>::type... a) -> R {
    return f(Arrival<A>::parse(a, names[I])...);
  };
}

// m.def(name, f, args...) with f's Pair parameters parsed by pair_arg, each named by its py::arg.
template <typename R, typename... A, typename... Args>
void def_op(py::module_& m, const char* name, R (*f)(A...), const Args&... args) {
  static_assert(sizeof...(A) == sizeof...(Args), "one py::arg per parameter");
  m.def(name, pairs_parsed(f, {args.name...}, std::index_sequence_for<A...>{}), args...);
}

template <typename Forward, typename Backward, typename ScratchBytes>
void def_conv(py::module_& m, Forward forward, Backward backward, ScratchBytes scratch_bytes) {
  def_op(m, "conv2d_forward", forward, py::arg("x"), py::arg("w"), py::arg("b"),
         py::arg("stride"), py::arg("padding"), py::arg("dilation"), py::arg("relu"));
  def_op(m, "conv2d_backward", backward, py::arg("x"), py::arg("w"), py::arg("dy"),
         py::arg("stride"), py::arg("padding"), py::arg("dilation"), py::arg("need_dx"),
         py::arg("need_db"), py::arg("relu_y"));
  def_op(m, "conv2d_scratch_bytes", scratch_bytes, py::arg("x"), py::arg("w"),
         py::arg("stride"), py::arg("padding"), py::arg("dilation"));
}

template <typename MaxForward, typename MaxBackward, typename AvgForward, typename AvgBackward>
void def_pool(py::module_& m, MaxForward max_forward, MaxBackward max_backward,
              AvgForward average_forward, AvgBackward average_backward) {
  def_op(m, "max_pool2d_forward", max_forward, py::arg("x"), py::arg("filter"),
         py::arg("stride"), py::arg("padding"), py::arg("ceil_mode"),
         py::arg("window_indices") = false);
  def_op(m, "max_pool2d_backward", max_backward, py::arg("x"), py::arg("dy"),
         py::arg("indices"), py::arg("filter"), py::arg("stride"), py::arg("padding"),
         py::arg("ceil_mode"), py::arg("window_indices") = false);
  def_op(m, "average_pool2d_forward", average_forward, py::arg("x"), py::arg("filter"),
         py::arg("stride"), py::arg("padding"), py::arg("ceil_mode"),
         py::arg("count_include_pad"));
  def_op(m, "average_pool2d_backward", average_backward, py::arg("x"), py::arg("dy"),
         py::arg("filter"), py::arg("stride"), py::arg("padding"), py::arg("ceil_mode"),
         py::arg("count_include_pad"));
}

template <typename Forward, typename Backward, typename BiasAdd, typename BiasGrad>
void def_dense(py::module_& m, Forward forward, Backward backward, BiasAdd bias_add,
               BiasGrad bias_grad) {
  m.def("dense_forward", forward, py::arg("x"), py::arg("w"), py::arg("b") = py::none(),
        py::arg("relu") = false);
  m.def("dense_backward", backward, py::arg("x"), py::arg("w"), py::arg("dy"),
        py::arg("need_dx") = true, py::arg("need_db") = true, py::arg("relu_y") = py::none());
  m.def("bias_add", bias_add, py::arg("x"), py::arg("b"));
  m.def("bias_grad", bias_grad, py::arg("dy"));
}

template <typename ReluForward, typename ReluBackward, typename DropoutForward,
          typename DropoutBackward, typename DropoutMask>
void def_activation(py::module_& m, ReluForward relu_forward, ReluBackward relu_backward,
                    DropoutForward dropout_forward, DropoutBackward dropout_backward,
                    DropoutMask dropout_mask) {
  m.def("relu_forward", relu_forward, py::arg("x"));
  m.def("relu_backward", relu_backward, py::arg("dy"), py::arg("y"));
  m.def("dropout_forward", dropout_forward, py::arg("x"), py::arg("ratio"), py::arg("seed"));
  m.def("dropout_backward", dropout_backward, py::arg("dy"), py::arg("ratio"), py::arg("seed"));
  m.def("dropout_mask", dropout_mask, py::arg("shape"), py::arg("ratio"), py::arg("seed"),
        py::arg("dtype"));
}

template <typename Forward, typename Backward, typename ForwardBackward>
void def_loss(py::module_& m, Forward forward, Backward backward, ForwardBackward both) {
  m.def("softmax_cross_entropy_forward", forward, py::arg("z"), py::arg("t"));
  m.def("softmax_cross_entropy_backward", backward, py::arg("z"), py::arg("t"),
        py::arg("dloss") = 1.0);
  m.def("softmax_cross_entropy_forward_backward", both, py::arg("z"), py::arg("t"),
        py::arg("dloss") = 1.0);
}

template <typename Sgd, typename Adam, typename SgdMulti, typename AdamMulti>
void def_optim(py::module_& m, Sgd sgd_update, Adam adam_update, SgdMulti sgd_update_multi,
               AdamMulti adam_update_multi) {
  m.def("sgd_update", sgd_update, py::arg("param"), py::arg("grad"), py::arg("velocity"),
        py::arg("lr"), py::arg("momentum"), py::arg("nesterov"), py::arg("weight_decay"));
  m.def("adam_update", adam_update, py::arg("param"), py::arg("grad"), py::arg("m"),
        py::arg("v"), py::arg("step"), py::arg("lr"), py::arg("beta1"), py::arg("beta2"),
        py::arg("eps"), py::arg("weight_decay"));
  m.def("sgd_update_multi", sgd_update_multi, py::arg("params"), py::arg("grads"),
        py::arg("velocities"), py::arg("lr"), py::arg("momentum"), py::arg("nesterov"),
        py::arg("weight_decays"));
  m.def("adam_update_multi", adam_update_multi, py::arg("params"), py::arg("grads"),
        py::arg("ms"), py::arg("vs"), py::arg("steps"), py::arg("lr"), py::arg("beta1"),
        py::arg("beta2"), py::arg("eps"), py::arg("weight_decays"),
        py::arg("corrections") = py::none());
}

// gather_batch and accuracy_count; the GPU adds argmax (cuda_data.cpp).
template <typename Gather, typename Accuracy>
void def_data(py::module_& m, Gather gather_batch, Accuracy accuracy_count) {
  m.def("gather_batch", gather_batch, py::arg("data"), py::arg("indices"),
        "Rows data[indices] of a dataset (the training loop's batch); indices is 1-D integer.");
  m.def("accuracy_count", accuracy_count, py::arg("z"), py::arg("t"),
        "0-d int64 array: rows of z whose argmax is the label (or t's row argmax).");
}

}  // namespace fastconv::bind
