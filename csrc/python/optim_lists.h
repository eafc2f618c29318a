// The list arguments of the multi-tensor updates (sgd_update_multi, adam_update_multi), shared by
// the CPU binding (cpu_optim.cpp) and the GPU one (cuda_optim.cpp): lists of one entry per
// parameter, per-entry scalars, and the overlap rule of the single updates across all entries.
// Every message names the list and the index, e.g. "grads[3] must have the shape of params[3]".
#pragma once
#include <pybind11/pybind11.h>

#include <algorithm>
#include <cstddef>
#include <cstdint>
#include <initializer_list>
#include <optional>
#include <string>
#include <vector>

#include "fastconv/text.h"
#include "python/args.h"
#include "python/checks.h"

namespace fastconv::bind {

inline std::string entry_name(const char* list, std::size_t i) {
  return text::cat(list, "[", i, "]");
}

// A list or tuple (not any iterable: a single array would iterate over its rows), its items held
// here since a later check may run Python code. expected >= 0: one entry per parameter.
inline std::vector<py::object> list_arg(py::handle obj, const char* name, const char* of,
                                        std::ptrdiff_t expected) {
  if (!py::isinstance<py::list>(obj) && !py::isinstance<py::tuple>(obj))
    throw py::type_error(text::cat(name, " must be a list or tuple of ", of, "; got ",
                                   type_name(obj)));
  std::vector<py::object> items;
  for (py::handle item : py::reinterpret_borrow<py::sequence>(obj))
    items.push_back(py::reinterpret_borrow<py::object>(item));
  if (expected >= 0 && items.size() != static_cast<std::size_t>(expected))
    throw py::value_error(text::cat(name, " must have one entry per parameter (",
                                    static_cast<std::uint64_t>(expected), ", as params); got ",
                                    static_cast<std::uint64_t>(items.size())));
  return items;
}

// The array lists of one multi-tensor call: params, grads, then the state lists. Parsed in
// argument order, so the first malformed argument is the one named. A state list that may be
// None (SGD's velocities) is left out when it is; the caller says whether None may stand there.
struct StateList {
  py::handle obj;
  const char* name;
  bool may_be_none;
};

struct UpdateLists {
  std::vector<std::vector<py::object>> lists;
  std::vector<const char*> names;

  std::size_t count() const { return lists[0].size(); }
  std::vector<const std::vector<py::object>*> pointers() const {
    std::vector<const std::vector<py::object>*> out;
    for (const auto& l : lists) out.push_back(&l);
    return out;
  }
};

inline UpdateLists update_lists(py::handle params, py::handle grads,
                                std::initializer_list<StateList> states) {
  UpdateLists out;
  out.lists.push_back(list_arg(params, "params", "arrays", -1));
  out.names.push_back("params");
  const auto n = static_cast<std::ptrdiff_t>(out.count());
  out.lists.push_back(list_arg(grads, "grads", "arrays", n));
  out.names.push_back("grads");
  for (const StateList& state : states) {
    if (state.may_be_none && state.obj.is_none()) continue;
    out.lists.push_back(list_arg(state.obj, state.name, "arrays", n));
    out.names.push_back(state.name);
  }
  return out;
}

// One weight decay (>= 0) per parameter; None: 0 for all.
inline std::vector<double> weight_decays_arg(py::handle obj, std::size_t n) {
  std::vector<double> out(n, 0.0);
  if (obj.is_none()) return out;
  const std::vector<py::object> items =
      list_arg(obj, "weight_decays", "real numbers", static_cast<std::ptrdiff_t>(n));
  for (std::size_t i = 0; i < n; ++i)
    out[i] = non_negative_arg(items[i], entry_name("weight_decays", i).c_str());
  return out;
}

// Adam's 1-based step count of each parameter, worded as adam_update's `step`.
inline std::vector<index_t> steps_arg(py::handle obj, std::size_t n) {
  const std::vector<py::object> items =
      list_arg(obj, "steps", "ints", static_cast<std::ptrdiff_t>(n));
  std::vector<index_t> out(n);
  for (std::size_t i = 0; i < n; ++i) {
    const std::string name = entry_name("steps", i);
    const py::handle s = items[i];
    if (s.is_none() || py::isinstance<py::bool_>(s) || !PyIndex_Check(s.ptr()))
      throw py::type_error(name + " must be an int (the 1-based count of this update); got " +
                           type_name(s));
    const std::optional<index_t> v = int64_of(s);
    if (!v)
      throw py::value_error(name + " must be an int in [1, 2**63) (the 1-based count of this "
                                   "update); got " + index_str(s));
    if (*v < 1)
      throw py::value_error(name + " must be >= 1 (the 1-based count of this update); got " +
                            std::to_string(*v));
    out[i] = *v;
  }
  return out;
}

// The arrays of one multi-tensor call, in the order added (params[i], grads[i], then the state
// of entry i). A written array (a parameter or its state) must not share memory with any other
// array of the call, gradients included; gradients may share memory with each other. On the CPU
// grads[i] may be params[i] itself, as in the single update.
class Spans {
 public:
  enum Role { kParam, kGrad, kState };

  void add(const void* data, std::size_t bytes, const char* list, std::size_t entry, Role role) {
    if (bytes == 0) return;  // an empty array shares nothing
    const auto lo = reinterpret_cast<std::uintptr_t>(data);
    spans_.push_back({lo, lo + bytes, data, bytes, list, entry, role});
  }

  void check(bool grad_may_be_own_param) const {
    // Sorted by address, each span meets only those still open at its start: one pass in the
    // usual case of disjoint arrays. The message then comes from a scan in the order added, so
    // it names the first offending pair whatever the addresses.
    std::vector<std::size_t> order(spans_.size());
    for (std::size_t i = 0; i < order.size(); ++i) order[i] = i;
    std::sort(order.begin(), order.end(),
              [&](std::size_t a, std::size_t b) { return spans_[a].lo < spans_[b].lo; });
    std::vector<std::size_t> open;
    bool found = false;
    for (std::size_t i : order) {
      open.erase(std::remove_if(open.begin(), open.end(),
                                [&](std::size_t a) { return spans_[a].hi <= spans_[i].lo; }),
                 open.end());
      for (std::size_t a : open) found = found || conflict(a, i, grad_may_be_own_param);
      if (found) break;
      open.push_back(i);
    }
    if (!found) return;
    for (std::size_t b = 0; b < spans_.size(); ++b)
      for (std::size_t a = 0; a < b; ++a)
        if (conflict(a, b, grad_may_be_own_param)) {
          const Span &x = spans_[b], &y = spans_[a];
          check_disjoint(x.data, x.bytes, entry_name(x.list, x.entry).c_str(), y.data, y.bytes,
                         entry_name(y.list, y.entry).c_str());
        }
  }

 private:
  struct Span {
    std::uintptr_t lo, hi;
    const void* data;
    std::size_t bytes;
    const char* list;
    std::size_t entry;
    Role role;
  };

  bool conflict(std::size_t i, std::size_t j, bool grad_may_be_own_param) const {
    const Span &a = spans_[i], &b = spans_[j];
    if (a.role == kGrad && b.role == kGrad) return false;  // both only read
    if (a.lo >= b.hi || b.lo >= a.hi) return false;
    const bool param_grad = a.role != kState && b.role != kState && a.role != b.role;
    const bool own = param_grad && a.entry == b.entry && a.lo == b.lo && a.hi == b.hi;
    return !(grad_may_be_own_param && own);
  }

  std::vector<Span> spans_;
};

}  // namespace fastconv::bind
