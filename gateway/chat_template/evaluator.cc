#include "gateway/chat_template/evaluator.h"

#include <memory>
#include <optional>

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "core/status_macros.h"
#include "gateway/chat_template/builtins.h"
#include "gateway/chat_template/value_ops.h"

namespace moe::chat {
namespace {

enum class Flow { kNormal, kBreak, kContinue };

using Scope = std::vector<std::pair<std::string, Value>>;

class Evaluator {
 public:
  Evaluator(Scope globals, const EvalLimits& limits) : limits_(limits) { scopes_.push_back(std::move(globals)); }

  absl::StatusOr<std::string> Run(const Body& body) {
    std::string out;
    ASSIGN_OR_RETURN(auto flow, ExecBody(body, &out));
    (void)flow;
    return out;
  }

 private:
  absl::Status Step() {
    if (++steps_ > limits_.max_steps) {
      return absl::ResourceExhaustedError(absl::StrCat("template evaluation exceeded ", limits_.max_steps, " steps"));
    }
    return absl::OkStatus();
  }

  static absl::Status AtLine(const absl::Status& s, int line) {
    const absl::string_view m = s.message();
    if (absl::StartsWith(m, kRaisedPrefix) || absl::StartsWith(m, "line ") ||
        s.code() != absl::StatusCode::kInvalidArgument) {
      return s;
    }
    return absl::InvalidArgumentError(absl::StrCat("line ", line, ": ", m));
  }

  absl::StatusOr<Flow> ExecBody(const Body& body, std::string* out) {
    for (const Stmt& s : body) {
      auto flow = Exec(s, out);
      if (!flow.ok()) return AtLine(flow.status(), s.line);
      if (*flow != Flow::kNormal) return *flow;
      if (out->size() > limits_.max_output_bytes) {
        return absl::ResourceExhaustedError(
            absl::StrCat("template output exceeds ", limits_.max_output_bytes, " bytes"));
      }
    }
    return Flow::kNormal;
  }

  absl::StatusOr<Flow> Exec(const Stmt& s, std::string* out) {
    RETURN_IF_ERROR(Step());
    switch (s.kind) {
      case Stmt::Kind::kText:
        out->append(s.text);
        return Flow::kNormal;
      case Stmt::Kind::kOutput: {
        ASSIGN_OR_RETURN(auto v, Eval(*s.expr));
        out->append(PyStr(v));
        return Flow::kNormal;
      }
      case Stmt::Kind::kIf:
        for (const IfBranch& b : s.branches) {
          ASSIGN_OR_RETURN(auto cond, Eval(*b.condition));
          if (Truthy(cond)) return ExecBody(b.body, out);
        }
        return ExecBody(s.else_body, out);
      case Stmt::Kind::kFor:
        return ExecFor(s, out);
      case Stmt::Kind::kSet: {
        ASSIGN_OR_RETURN(auto v, Eval(*s.expr));
        RETURN_IF_ERROR(Assign(s.targets, v));
        return Flow::kNormal;
      }
      case Stmt::Kind::kSetAttr: {
        const Value ns = Lookup(s.targets[0]);
        if (ns.kind() != Value::Kind::kNamespace) {
          if (ns.is_undefined()) return UndefinedError(ns);
          return absl::InvalidArgumentError("Cannot assign attribute on non-namespace object");
        }
        ASSIGN_OR_RETURN(auto v, Eval(*s.expr));
        auto& attrs = ns.ns()->attributes;
        for (auto& [k, old] : attrs) {
          if (k == s.attribute) {
            old = std::move(v);
            return Flow::kNormal;
          }
        }
        attrs.emplace_back(s.attribute, std::move(v));
        return Flow::kNormal;
      }
      case Stmt::Kind::kSetBlock: {
        std::string captured;
        ASSIGN_OR_RETURN(auto flow, ExecBody(s.body, &captured));
        (void)flow;
        Value v = Value::Str(std::move(captured));
        for (const ExprPtr& f : s.filters) {
          ASSIGN_OR_RETURN(auto filtered, ApplyFilterExpr(*f, v));
          v = std::move(filtered);
        }
        RETURN_IF_ERROR(Assign(s.targets, v));
        return Flow::kNormal;
      }
      case Stmt::Kind::kBreak:
        return Flow::kBreak;
      case Stmt::Kind::kContinue:
        return Flow::kContinue;
      case Stmt::Kind::kGeneration:
        return ExecBody(s.body, out);
    }
    return absl::InternalError("unknown statement");
  }

  absl::StatusOr<Flow> ExecFor(const Stmt& s, std::string* out) {
    ASSIGN_OR_RETURN(auto iterable, Eval(*s.expr));
    ASSIGN_OR_RETURN(auto all, Iterate(iterable));
    auto items = std::make_shared<std::vector<Value>>();
    if (s.filter) {
      for (Value& item : all) {
        scopes_.emplace_back();
        absl::Status bound = Assign(s.targets, item);
        absl::StatusOr<Value> keep = bound.ok() ? Eval(*s.filter) : absl::StatusOr<Value>(bound);
        scopes_.pop_back();
        if (!keep.ok()) return keep.status();
        if (Truthy(*keep)) items->push_back(std::move(item));
      }
    } else {
      *items = std::move(all);
    }
    if (items->empty()) return ExecBody(s.else_body, out);
    for (size_t i = 0; i < items->size(); ++i) {
      RETURN_IF_ERROR(Step());
      scopes_.emplace_back();
      auto state = std::make_shared<LoopState>();
      state->items = items;
      state->index0 = static_cast<int64_t>(i);
      state->depth0 = 0;  // depth counts recursive loop() calls, which are unsupported
      scopes_.back().emplace_back("loop", Value::Loop(std::move(state)));
      absl::Status bound = Assign(s.targets, (*items)[i]);
      absl::StatusOr<Flow> flow = bound.ok() ? ExecBody(s.body, out) : absl::StatusOr<Flow>(bound);
      scopes_.pop_back();
      if (!flow.ok()) return flow.status();
      if (*flow == Flow::kBreak) break;
    }
    return Flow::kNormal;
  }

  absl::Status Assign(const std::vector<std::string>& targets, const Value& v) {
    if (targets.size() == 1) {
      Bind(targets[0], v);
      return absl::OkStatus();
    }
    ASSIGN_OR_RETURN(auto parts, Iterate(v));
    if (parts.size() != targets.size()) {
      return absl::InvalidArgumentError(
          parts.size() > targets.size()
              ? absl::StrCat("too many values to unpack (expected ", targets.size(), ")")
              : absl::StrCat("not enough values to unpack (expected ", targets.size(), ", got ", parts.size(), ")"));
    }
    for (size_t i = 0; i < targets.size(); ++i) Bind(targets[i], parts[i]);
    return absl::OkStatus();
  }

  void Bind(const std::string& name, const Value& v) {
    for (auto& [k, old] : scopes_.back()) {
      if (k == name) {
        old = v;
        return;
      }
    }
    scopes_.back().emplace_back(name, v);
  }

  Value Lookup(const std::string& name) const {
    for (auto scope = scopes_.rbegin(); scope != scopes_.rend(); ++scope) {
      for (const auto& [k, v] : *scope) {
        if (k == name) return v;
      }
    }
    if (IsKnownFunction(name)) return Value::Callable(name, Value());
    return Value::Undefined(absl::StrCat("'", name, "' is undefined"));
  }

  absl::StatusOr<CallArgs> EvalArgs(const Expr& e, size_t first) {
    CallArgs args;
    for (size_t i = first; i < e.args.size(); ++i) {
      ASSIGN_OR_RETURN(auto v, Eval(*e.args[i]));
      args.positional.push_back(std::move(v));
    }
    for (const auto& [k, x] : e.kwargs) {
      ASSIGN_OR_RETURN(auto v, Eval(*x));
      args.keyword.emplace_back(k, std::move(v));
    }
    return args;
  }

  absl::StatusOr<Value> ApplyFilterExpr(const Expr& f, const Value& input) {
    ASSIGN_OR_RETURN(auto args, EvalArgs(f, 1));
    return ApplyFilter(f.name, input, args);
  }

  absl::StatusOr<std::optional<Value>> EvalOptional(const ExprPtr& e) {
    if (!e) return std::optional<Value>();
    ASSIGN_OR_RETURN(auto v, Eval(*e));
    return std::optional<Value>(std::move(v));
  }

  absl::StatusOr<Value> Eval(const Expr& e) {
    RETURN_IF_ERROR(Step());
    switch (e.kind) {
      case Expr::Kind::kLiteral:
        return Value::DataRef(e.literal, e.literal.get());
      case Expr::Kind::kName:
        return Lookup(e.name);
      case Expr::Kind::kList:
      case Expr::Kind::kTuple: {
        std::vector<Value> items;
        for (const ExprPtr& a : e.args) {
          ASSIGN_OR_RETURN(auto v, Eval(*a));
          items.push_back(std::move(v));
        }
        return MakeList(items, "a list");
      }
      case Expr::Kind::kDict: {
        Json out = Json::object();
        for (size_t i = 0; i + 1 < e.args.size(); i += 2) {
          ASSIGN_OR_RETURN(auto k, Eval(*e.args[i]));
          if (!k.is_string()) return TypeError("dict literal keys must be strings");
          ASSIGN_OR_RETURN(auto v, Eval(*e.args[i + 1]));
          ASSIGN_OR_RETURN(auto j, ToJson(v, "a dict"));
          out[k.str()] = std::move(j);
        }
        return Value::Data(std::move(out));
      }
      case Expr::Kind::kGetAttr: {
        ASSIGN_OR_RETURN(auto obj, Eval(*e.args[0]));
        return GetAttr(obj, e.name);
      }
      case Expr::Kind::kGetItem: {
        ASSIGN_OR_RETURN(auto obj, Eval(*e.args[0]));
        ASSIGN_OR_RETURN(auto key, Eval(*e.args[1]));
        return GetItem(obj, key);
      }
      case Expr::Kind::kSlice: {
        ASSIGN_OR_RETURN(auto obj, Eval(*e.args[0]));
        ASSIGN_OR_RETURN(auto start, EvalOptional(e.args[1]));
        ASSIGN_OR_RETURN(auto stop, EvalOptional(e.args[2]));
        ASSIGN_OR_RETURN(auto step, EvalOptional(e.args[3]));
        return Slice(obj, start, stop, step);
      }
      case Expr::Kind::kCall: {
        ASSIGN_OR_RETURN(auto callee, Eval(*e.args[0]));
        ASSIGN_OR_RETURN(auto args, EvalArgs(e, 1));
        return CallFunction(callee, args);
      }
      case Expr::Kind::kFilter: {
        ASSIGN_OR_RETURN(auto input, Eval(*e.args[0]));
        return ApplyFilterExpr(e, input);
      }
      case Expr::Kind::kTest: {
        ASSIGN_OR_RETURN(auto input, Eval(*e.args[0]));
        ASSIGN_OR_RETURN(auto args, EvalArgs(e, 1));
        ASSIGN_OR_RETURN(auto result, ApplyTest(e.name, input, args));
        return Value::Bool(result != e.negated);
      }
      case Expr::Kind::kNot: {
        ASSIGN_OR_RETURN(auto v, Eval(*e.args[0]));
        return Value::Bool(!Truthy(v));
      }
      case Expr::Kind::kNeg:
      case Expr::Kind::kPos: {
        ASSIGN_OR_RETURN(auto v, Eval(*e.args[0]));
        return Negate(v, e.kind == Expr::Kind::kNeg);
      }
      case Expr::Kind::kBinary: {
        ASSIGN_OR_RETURN(auto a, Eval(*e.args[0]));
        ASSIGN_OR_RETURN(auto b, Eval(*e.args[1]));
        return BinaryOp(e.name, a, b);
      }
      case Expr::Kind::kAnd:
      case Expr::Kind::kOr: {
        ASSIGN_OR_RETURN(auto a, Eval(*e.args[0]));
        if (Truthy(a) == (e.kind == Expr::Kind::kOr)) return a;
        return Eval(*e.args[1]);
      }
      case Expr::Kind::kCompare: {
        ASSIGN_OR_RETURN(auto left, Eval(*e.args[0]));
        for (size_t i = 0; i < e.ops.size(); ++i) {
          ASSIGN_OR_RETURN(auto right, Eval(*e.args[i + 1]));
          ASSIGN_OR_RETURN(auto ok, Compare(e.ops[i], left, right));
          if (!ok) return Value::Bool(false);
          left = std::move(right);
        }
        return Value::Bool(true);
      }
      case Expr::Kind::kCondExpr: {
        ASSIGN_OR_RETURN(auto cond, Eval(*e.args[0]));
        if (Truthy(cond)) return Eval(*e.args[1]);
        if (e.args[2]) return Eval(*e.args[2]);
        return Value::Undefined(absl::StrCat("the inline if-expression on line ", e.line,
                                             " evaluated to false and no else section was defined."));
      }
    }
    return absl::InternalError("unknown expression");
  }

  const EvalLimits limits_;
  std::vector<Scope> scopes_;
  int64_t steps_ = 0;
};

}  // namespace

absl::StatusOr<std::string> Evaluate(const Body& body, std::vector<std::pair<std::string, Value>> variables,
                                     const EvalLimits& limits) {
  return Evaluator(std::move(variables), limits).Run(body);
}

}  // namespace moe::chat
