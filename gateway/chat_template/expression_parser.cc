#include "gateway/chat_template/expression_parser.h"

#include "core/status_macros.h"
#include "gateway/chat_template/builtins.h"

namespace moe::chat {

ExprPtr ExpressionParser::Make(Expr::Kind kind, int line) {
  auto e = std::make_unique<Expr>();
  e->kind = kind;
  e->line = line;
  return e;
}

ExprPtr ExpressionParser::Make(Expr::Kind kind, int line, ExprPtr a, ExprPtr b) {
  auto e = Make(kind, line);
  e->args.push_back(std::move(a));
  if (b) e->args.push_back(std::move(b));
  return e;
}

bool ExpressionParser::IsTupleEnd(std::initializer_list<absl::string_view> extra_end) const {
  const Token& t = cur();
  if (t.type == TokenType::kVariableEnd || t.type == TokenType::kBlockEnd || t.type == TokenType::kEof) return true;
  if (IsOp(t, ")")) return true;
  for (auto n : extra_end) {
    if (IsName(t, n)) return true;
  }
  return false;
}

absl::StatusOr<ExprPtr> ExpressionParser::ParseTuple(bool with_condexpr,
                                                     std::initializer_list<absl::string_view> extra_end,
                                                     bool explicit_parens) {
  const int line = cur().line;
  std::vector<ExprPtr> items;
  bool is_tuple = false;
  while (true) {
    if (!items.empty()) RETURN_IF_ERROR(ExpectOp(","));
    if (IsTupleEnd(extra_end)) break;
    ASSIGN_OR_RETURN(auto e, ParseExpression(with_condexpr));
    items.push_back(std::move(e));
    if (IsOp(cur(), ",")) {
      is_tuple = true;
    } else {
      break;
    }
  }
  if (!is_tuple) {
    if (!items.empty()) return std::move(items[0]);
    if (!explicit_parens) return Unexpected("an expression");
  }
  auto t = Make(Expr::Kind::kTuple, line);
  t->args = std::move(items);
  return t;
}

absl::StatusOr<ExprPtr> ExpressionParser::ParseExpression(bool with_condexpr) {
  if (++depth_ > kMaxParseDepth) return Error(cur().line, "expression nested too deeply");
  auto e = with_condexpr ? ParseCondExpr() : ParseOr();
  --depth_;
  return e;
}

absl::StatusOr<ExprPtr> ExpressionParser::ParseCondExpr() {
  const int line = cur().line;
  ASSIGN_OR_RETURN(auto expr1, ParseOr());
  while (SkipName("if")) {
    ASSIGN_OR_RETURN(auto expr2, ParseOr());
    ExprPtr expr3;
    if (SkipName("else")) {
      ASSIGN_OR_RETURN(auto e3, ParseCondExpr());
      expr3 = std::move(e3);
    }
    auto c = Make(Expr::Kind::kCondExpr, line, std::move(expr2), std::move(expr1));
    c->args.push_back(std::move(expr3));
    expr1 = std::move(c);
  }
  return expr1;
}

absl::StatusOr<ExprPtr> ExpressionParser::ParseOr() {
  ASSIGN_OR_RETURN(auto left, ParseAnd());
  while (IsName(cur(), "or")) {
    const int line = cur().line;
    next();
    ASSIGN_OR_RETURN(auto right, ParseAnd());
    left = Make(Expr::Kind::kOr, line, std::move(left), std::move(right));
  }
  return left;
}

absl::StatusOr<ExprPtr> ExpressionParser::ParseAnd() {
  ASSIGN_OR_RETURN(auto left, ParseNot());
  while (IsName(cur(), "and")) {
    const int line = cur().line;
    next();
    ASSIGN_OR_RETURN(auto right, ParseNot());
    left = Make(Expr::Kind::kAnd, line, std::move(left), std::move(right));
  }
  return left;
}

absl::StatusOr<ExprPtr> ExpressionParser::ParseNot() {
  if (IsName(cur(), "not")) {
    const int line = cur().line;
    next();
    if (++depth_ > kMaxParseDepth) return Error(line, "expression nested too deeply");
    ASSIGN_OR_RETURN(auto operand, ParseNot());
    --depth_;
    return Make(Expr::Kind::kNot, line, std::move(operand));
  }
  return ParseCompare();
}

absl::StatusOr<ExprPtr> ExpressionParser::ParseCompare() {
  const int line = cur().line;
  ASSIGN_OR_RETURN(auto expr, ParseMath1());
  ExprPtr cmp;
  while (true) {
    std::string op;
    const Token& t = cur();
    if (t.type == TokenType::kOperator && (t.value == "==" || t.value == "!=" || t.value == "<" || t.value == "<=" ||
                                           t.value == ">" || t.value == ">=")) {
      op = t.value;
      next();
    } else if (IsName(t, "in")) {
      op = "in";
      next();
    } else if (IsName(t, "not") && IsName(look(), "in")) {
      op = "not in";
      next();
      next();
    } else {
      break;
    }
    ASSIGN_OR_RETURN(auto operand, ParseMath1());
    if (!cmp) cmp = Make(Expr::Kind::kCompare, line, std::move(expr));
    cmp->ops.push_back(op);
    cmp->args.push_back(std::move(operand));
  }
  if (cmp) return cmp;
  return expr;
}

absl::StatusOr<ExprPtr> ExpressionParser::ParseBinaryLevel(int level) {
  // Levels: 0: + -   1: ~   2: * / // %   3: **
  static const std::vector<std::vector<absl::string_view>> kOps = {{"+", "-"}, {"~"}, {"*", "/", "//", "%"}, {"**"}};
  auto operand = [&]() -> absl::StatusOr<ExprPtr> {
    return level == 3 ? ParseUnary(/*with_filter=*/true) : ParseBinaryLevel(level + 1);
  };
  ASSIGN_OR_RETURN(auto left, operand());
  while (cur().type == TokenType::kOperator) {
    std::string op;
    for (auto o : kOps[level]) {
      if (cur().value == o) op = std::string(o);
    }
    if (op.empty()) break;
    const int line = cur().line;
    next();
    ASSIGN_OR_RETURN(auto right, operand());
    left = Make(Expr::Kind::kBinary, line, std::move(left), std::move(right));
    left->name = op;
  }
  return left;
}

absl::StatusOr<ExprPtr> ExpressionParser::ParseUnary(bool with_filter) {
  const int line = cur().line;
  if (++depth_ > kMaxParseDepth) return Error(line, "expression nested too deeply");
  ExprPtr node;
  if (IsOp(cur(), "-") || IsOp(cur(), "+")) {
    const bool neg = cur().value == "-";
    next();
    ASSIGN_OR_RETURN(auto operand, ParseUnary(/*with_filter=*/false));
    node = Make(neg ? Expr::Kind::kNeg : Expr::Kind::kPos, line, std::move(operand));
  } else {
    ASSIGN_OR_RETURN(auto primary, ParsePrimary());
    node = std::move(primary);
  }
  ASSIGN_OR_RETURN(auto post, ParsePostfix(std::move(node)));
  node = std::move(post);
  if (with_filter) {
    ASSIGN_OR_RETURN(auto filtered, ParseFilterExpr(std::move(node)));
    node = std::move(filtered);
  }
  --depth_;
  return node;
}

absl::StatusOr<ExprPtr> ExpressionParser::ParsePrimary() {
  const Token& t = cur();
  const int line = t.line;
  if (t.type == TokenType::kName) {
    ExprPtr e;
    if (t.value == "true" || t.value == "True" || t.value == "false" || t.value == "False") {
      e = Make(Expr::Kind::kLiteral, line);
      e->literal = std::make_shared<const Json>(t.value == "true" || t.value == "True");
    } else if (t.value == "none" || t.value == "None") {
      e = Make(Expr::Kind::kLiteral, line);
      e->literal = std::make_shared<const Json>(nullptr);
    } else {
      e = Make(Expr::Kind::kName, line);
      e->name = t.value;
    }
    next();
    return e;
  }
  if (t.type == TokenType::kString) {
    std::string text;
    while (cur().type == TokenType::kString) {  // adjacent literals concatenate
      text += cur().value;
      next();
    }
    auto e = Make(Expr::Kind::kLiteral, line);
    e->literal = std::make_shared<const Json>(std::move(text));
    return e;
  }
  if (t.type == TokenType::kInteger || t.type == TokenType::kFloat) {
    auto e = Make(Expr::Kind::kLiteral, line);
    e->literal = t.type == TokenType::kInteger ? std::make_shared<const Json>(t.int_value)
                                               : std::make_shared<const Json>(t.float_value);
    next();
    return e;
  }
  if (IsOp(t, "(")) {
    next();
    ASSIGN_OR_RETURN(auto inner, ParseTuple(/*with_condexpr=*/true, {}, /*explicit_parens=*/true));
    RETURN_IF_ERROR(ExpectOp(")"));
    return inner;
  }
  if (IsOp(t, "[") || IsOp(t, "{")) {
    const bool is_dict = t.value == "{";
    const std::string close = is_dict ? "}" : "]";
    next();
    auto e = Make(is_dict ? Expr::Kind::kDict : Expr::Kind::kList, line);
    while (!IsOp(cur(), close)) {
      if (!e->args.empty()) {
        RETURN_IF_ERROR(ExpectOp(","));
        if (IsOp(cur(), close)) break;
      }
      ASSIGN_OR_RETURN(auto item, ParseExpression(/*with_condexpr=*/true));
      e->args.push_back(std::move(item));
      if (is_dict) {
        RETURN_IF_ERROR(ExpectOp(":"));
        ASSIGN_OR_RETURN(auto value, ParseExpression(/*with_condexpr=*/true));
        e->args.push_back(std::move(value));
      }
    }
    RETURN_IF_ERROR(ExpectOp(close));
    return e;
  }
  return Unexpected("an expression");
}

absl::StatusOr<ExprPtr> ExpressionParser::ParsePostfix(ExprPtr node) {
  while (true) {
    const int line = cur().line;
    if (IsOp(cur(), ".")) {
      next();
      if (cur().type == TokenType::kName) {
        auto e = Make(Expr::Kind::kGetAttr, line, std::move(node));
        e->name = cur().value;
        node = std::move(e);
      } else if (cur().type == TokenType::kInteger) {
        auto index = Make(Expr::Kind::kLiteral, line);
        index->literal = std::make_shared<const Json>(cur().int_value);
        node = Make(Expr::Kind::kGetItem, line, std::move(node), std::move(index));
      } else {
        return Unexpected("an attribute name");
      }
      next();
    } else if (IsOp(cur(), "[")) {
      next();
      std::vector<ExprPtr> subs;
      while (!IsOp(cur(), "]")) {
        if (!subs.empty()) RETURN_IF_ERROR(ExpectOp(","));
        ASSIGN_OR_RETURN(auto sub, ParseSubscribed(std::move(node)));
        node = nullptr;
        subs.push_back(std::move(sub));
      }
      RETURN_IF_ERROR(ExpectOp("]"));
      if (subs.size() != 1) return Error(line, "subscripts with several indices are not supported");
      node = std::move(subs[0]);
    } else if (IsOp(cur(), "(")) {
      ASSIGN_OR_RETURN(auto call, ParseCall(std::move(node)));
      node = std::move(call);
    } else {
      return node;
    }
  }
}

// One subscript of `object`: an index (kGetItem) or a slice (kSlice).
absl::StatusOr<ExprPtr> ExpressionParser::ParseSubscribed(ExprPtr object) {
  const int line = cur().line;
  if (object == nullptr) return Error(line, "subscripts with several indices are not supported");
  std::vector<ExprPtr> bounds;  // start, stop, step
  if (IsOp(cur(), ":")) {
    next();
    bounds.push_back(nullptr);
  } else {
    ASSIGN_OR_RETURN(auto index, ParseExpression(/*with_condexpr=*/true));
    if (!IsOp(cur(), ":")) return Make(Expr::Kind::kGetItem, line, std::move(object), std::move(index));
    next();
    bounds.push_back(std::move(index));
  }
  auto at_end = [&] { return IsOp(cur(), "]") || IsOp(cur(), ","); };
  if (IsOp(cur(), ":") || at_end()) {
    bounds.push_back(nullptr);
  } else {
    ASSIGN_OR_RETURN(auto stop, ParseExpression(/*with_condexpr=*/true));
    bounds.push_back(std::move(stop));
  }
  if (IsOp(cur(), ":")) {
    next();
    if (at_end()) {
      bounds.push_back(nullptr);
    } else {
      ASSIGN_OR_RETURN(auto step, ParseExpression(/*with_condexpr=*/true));
      bounds.push_back(std::move(step));
    }
  } else {
    bounds.push_back(nullptr);
  }
  auto e = Make(Expr::Kind::kSlice, line, std::move(object));
  for (auto& b : bounds) e->args.push_back(std::move(b));
  return e;
}

absl::Status ExpressionParser::ParseCallArgs(Expr* e) {
  RETURN_IF_ERROR(ExpectOp("("));
  bool need_comma = false;
  while (!IsOp(cur(), ")")) {
    if (need_comma) {
      RETURN_IF_ERROR(ExpectOp(","));
      if (IsOp(cur(), ")")) break;
    }
    if (IsOp(cur(), "*") || IsOp(cur(), "**")) return Error(cur().line, "*args and **kwargs are not supported");
    if (cur().type == TokenType::kName && IsOp(look(), "=")) {
      std::string key = cur().value;
      next();
      next();
      ASSIGN_OR_RETURN(auto value, ParseExpression(/*with_condexpr=*/true));
      e->kwargs.emplace_back(std::move(key), std::move(value));
    } else {
      if (!e->kwargs.empty()) return Error(cur().line, "positional argument after keyword argument");
      ASSIGN_OR_RETURN(auto value, ParseExpression(/*with_condexpr=*/true));
      e->args.push_back(std::move(value));
    }
    need_comma = true;
  }
  return ExpectOp(")");
}

absl::StatusOr<ExprPtr> ExpressionParser::ParseCall(ExprPtr callee) {
  const int line = cur().line;
  if (callee->kind == Expr::Kind::kName) {
    if (!IsKnownFunction(callee->name)) return Error(line, absl::StrCat("unknown function '", callee->name, "'"));
  } else if (callee->kind == Expr::Kind::kGetAttr) {
    if (!IsKnownMethod(callee->name)) return Error(line, absl::StrCat("unsupported method '", callee->name, "'"));
  } else {
    return Error(line, "only named functions and methods can be called");
  }
  auto e = Make(Expr::Kind::kCall, line, std::move(callee));
  RETURN_IF_ERROR(ParseCallArgs(e.get()));
  return e;
}

// `| name[(args)]` applied to `node` (null for a {% set %} block).
absl::StatusOr<ExprPtr> ExpressionParser::ParseFilter(ExprPtr node) {
  RETURN_IF_ERROR(ExpectOp("|"));
  const int line = cur().line;
  ASSIGN_OR_RETURN(auto name, ExpectName());
  while (SkipOp(".")) {
    ASSIGN_OR_RETURN(auto part, ExpectName());
    name += "." + part;
  }
  if (!IsKnownFilter(name)) return Error(line, absl::StrCat("unknown filter '", name, "'"));
  auto e = Make(Expr::Kind::kFilter, line);
  e->args.push_back(std::move(node));
  e->name = std::move(name);
  if (IsOp(cur(), "(")) RETURN_IF_ERROR(ParseCallArgs(e.get()));
  return e;
}

absl::StatusOr<ExprPtr> ExpressionParser::ParseTest(ExprPtr node) {
  const int line = cur().line;
  next();  // `is`
  const bool negated = SkipName("not");
  ASSIGN_OR_RETURN(auto name, ExpectName());
  while (SkipOp(".")) {
    ASSIGN_OR_RETURN(auto part, ExpectName());
    name += "." + part;
  }
  if (!IsKnownTest(name)) return Error(line, absl::StrCat("unknown test '", name, "'"));
  auto e = Make(Expr::Kind::kTest, line, std::move(node));
  e->name = std::move(name);
  e->negated = negated;
  const Token& t = cur();
  if (IsOp(t, "(")) {
    RETURN_IF_ERROR(ParseCallArgs(e.get()));
  } else if ((t.type == TokenType::kName || t.type == TokenType::kString || t.type == TokenType::kInteger ||
              t.type == TokenType::kFloat || IsOp(t, "(") || IsOp(t, "[") || IsOp(t, "{")) &&
             !IsName(t, "else") && !IsName(t, "or") && !IsName(t, "and")) {
    if (IsName(t, "is")) return Error(t.line, "tests cannot be chained with 'is'");
    ASSIGN_OR_RETURN(auto arg, ParsePrimary());
    ASSIGN_OR_RETURN(auto post, ParsePostfix(std::move(arg)));
    e->args.push_back(std::move(post));
  }
  return e;
}

absl::StatusOr<ExprPtr> ExpressionParser::ParseFilterExpr(ExprPtr node) {
  while (true) {
    if (IsOp(cur(), "|")) {
      ASSIGN_OR_RETURN(auto f, ParseFilter(std::move(node)));
      node = std::move(f);
    } else if (IsName(cur(), "is")) {
      ASSIGN_OR_RETURN(auto t, ParseTest(std::move(node)));
      node = std::move(t);
    } else if (IsOp(cur(), "(")) {
      ASSIGN_OR_RETURN(auto call, ParseCall(std::move(node)));
      node = std::move(call);
    } else {
      return node;
    }
  }
}

}  // namespace moe::chat
