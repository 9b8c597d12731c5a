#include "autograd/gradcheck.h"

#include <cmath>
#include <sstream>

#include "autograd/node.h"
#include "autograd/ops.h"

namespace iris {

GradcheckResult gradcheck(const std::function<std::vector<Tensor>(const std::vector<Tensor>&)>& fn,
                          const std::vector<Tensor>& inputs, const GradcheckOptions& opt) {
  for (const Tensor& t : inputs)
    IRIS_CHECK(!t.defined() || !t.requires_grad() ||
                   (t.dtype() == DType::f64 && t.device().is_cpu() && t.is_contiguous()),
               "gradcheck: inputs requiring grad must be contiguous float64 CPU tensors, got ",
               t.desc());
  // Fixed projection weights, one tensor per output.
  Generator gen(opt.seed);
  std::vector<Tensor> outs0;
  {
    NoGradGuard ng;
    outs0 = fn(inputs);
  }
  std::vector<Tensor> v;
  for (const Tensor& o : outs0) v.push_back(randn(o.shape(), DType::f64, Device::cpu(), &gen));
  auto projected = [&](const std::vector<Tensor>& outs) {
    Tensor total = zeros({}, DType::f64);
    for (size_t i = 0; i < outs.size(); ++i)
      if (is_floating(outs[i].dtype())) total = add(total, sum(mul(outs[i], v[i])));
    return total;
  };

  for (const Tensor& t : inputs)
    if (t.defined() && t.requires_grad()) t.set_grad(Tensor());
  const Tensor loss = projected(fn(inputs));
  IRIS_CHECK(loss.requires_grad(), "gradcheck: the function's outputs do not depend on any input "
                                   "that requires grad");
  loss.backward();

  GradcheckResult res;
  for (size_t k = 0; k < inputs.size(); ++k) {
    const Tensor& x = inputs[k];
    if (!x.defined() || !x.requires_grad()) continue;
    const Tensor g = x.grad();
    const std::vector<double> analytic =
        g.defined() ? g.to_vector<double>() : std::vector<double>(x.numel(), 0.0);
    double* p = x.data<double>();
    for (int64_t j = 0; j < x.numel(); ++j) {
      const double orig = p[j];
      double fp, fm;
      {
        NoGradGuard ng;
        p[j] = orig + opt.eps;
        fp = projected(fn(inputs)).item();
        p[j] = orig - opt.eps;
        fm = projected(fn(inputs)).item();
        p[j] = orig;
      }
      const double numeric = (fp - fm) / (2 * opt.eps);
      const double err = std::abs(numeric - analytic[j]);
      res.max_abs_err = std::max(res.max_abs_err, err);
      if (res.ok && !(err <= opt.atol + opt.rtol * std::abs(numeric))) {
        res.ok = false;
        std::ostringstream os;
        os << "gradcheck: input " << k << " (" << x.desc() << ") element " << j
           << ": analytic " << analytic[j] << " vs numeric " << numeric << " (|err| " << err
           << ")";
        res.message = os.str();
      }
    }
  }
  return res;
}

}  // namespace iris
