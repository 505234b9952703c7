#include "gateway/chat_template/parser.h"

#include <initializer_list>
#include <string>
#include <vector>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "absl/strings/string_view.h"
#include "core/status_macros.h"
#include "gateway/chat_template/expression_parser.h"

namespace moe::chat {
namespace {

class Parser : public ExpressionParser {
 public:
  explicit Parser(std::vector<Token> tokens) : ExpressionParser(std::move(tokens)) {}

  absl::StatusOr<Body> ParseTemplate() {
    Body body;
    std::string end;
    RETURN_IF_ERROR(Subparse({}, &body, &end));
    return body;
  }

 private:
  absl::Status ExpectBlockEnd() { return ExpectType(TokenType::kBlockEnd, "end of statement block"); }

  // Parses statements until a block tag whose name is in `end_tags`; leaves
  // the stream on that name and stores it in *found.
  absl::Status Subparse(std::initializer_list<absl::string_view> end_tags, Body* out, std::string* found) {
    if (++depth_ > kMaxParseDepth) return Error(cur().line, "statements nested too deeply");
    while (true) {
      const Token& t = cur();
      if (t.type == TokenType::kEof) {
        if (end_tags.size() == 0) break;
        std::vector<std::string> names;
        for (auto n : end_tags) names.push_back(absl::StrCat("'", n, "'"));
        return Error(t.line, absl::StrCat("unexpected end of template, looking for ", absl::StrJoin(names, " or ")));
      }
      if (t.type == TokenType::kData) {
        Stmt s;
        s.kind = Stmt::Kind::kText;
        s.line = t.line;
        s.text = t.value;
        out->push_back(std::move(s));
        next();
      } else if (t.type == TokenType::kVariableBegin) {
        Stmt s;
        s.kind = Stmt::Kind::kOutput;
        s.line = t.line;
        next();
        ASSIGN_OR_RETURN(auto e, ParseTuple(/*with_condexpr=*/true, {}, /*explicit_parens=*/false));
        s.expr = std::move(e);
        RETURN_IF_ERROR(ExpectType(TokenType::kVariableEnd, "end of print statement"));
        out->push_back(std::move(s));
      } else if (t.type == TokenType::kBlockBegin) {
        next();
        if (cur().type == TokenType::kName) {
          for (auto n : end_tags) {
            if (cur().value == n) {
              *found = cur().value;
              --depth_;
              return absl::OkStatus();
            }
          }
        }
        RETURN_IF_ERROR(ParseStatement(out));
      } else {
        return Unexpected("template text or a tag");
      }
    }
    --depth_;
    return absl::OkStatus();
  }

  absl::Status ParseStatement(Body* out) {
    if (cur().type != TokenType::kName) return Unexpected("a statement name");
    const std::string tag = cur().value;
    const int line = cur().line;
    Stmt s;
    s.line = line;
    if (tag == "for") {
      RETURN_IF_ERROR(ParseFor(&s));
    } else if (tag == "if") {
      RETURN_IF_ERROR(ParseIf(&s));
    } else if (tag == "set") {
      RETURN_IF_ERROR(ParseSet(&s));
    } else if (tag == "break" || tag == "continue") {
      if (loop_depth_ == 0) return Error(line, absl::StrCat("'", tag, "' outside of a loop"));
      s.kind = tag == "break" ? Stmt::Kind::kBreak : Stmt::Kind::kContinue;
      next();
      RETURN_IF_ERROR(ExpectBlockEnd());
    } else if (tag == "generation") {
      s.kind = Stmt::Kind::kGeneration;
      next();
      RETURN_IF_ERROR(ExpectBlockEnd());
      std::string end;
      RETURN_IF_ERROR(Subparse({"endgeneration"}, &s.body, &end));
      next();
      RETURN_IF_ERROR(ExpectBlockEnd());
    } else {
      return Error(line, absl::StrCat("unsupported tag '", tag, "'"));
    }
    out->push_back(std::move(s));
    return absl::OkStatus();
  }

  // Names, comma separated, optionally in parentheses: `a`, `k, v`, `(k, v)`.
  absl::Status ParseTargets(std::vector<std::string>* targets) {
    const bool parens = SkipOp("(");
    while (true) {
      ASSIGN_OR_RETURN(auto name, ExpectName());
      targets->push_back(std::move(name));
      if (!SkipOp(",")) break;
      if (cur().type != TokenType::kName) break;
    }
    if (parens) RETURN_IF_ERROR(ExpectOp(")"));
    for (const auto& t : *targets) {
      if (t == "true" || t == "false" || t == "none" || t == "True" || t == "False" || t == "None") {
        return Error(cur().line, absl::StrCat("cannot assign to '", t, "'"));
      }
    }
    return absl::OkStatus();
  }

  absl::Status ParseFor(Stmt* s) {
    s->kind = Stmt::Kind::kFor;
    next();
    RETURN_IF_ERROR(ParseTargets(&s->targets));
    if (!SkipName("in")) return Unexpected("'in'");
    ASSIGN_OR_RETURN(auto iter, ParseTuple(/*with_condexpr=*/false, {"recursive"}, /*explicit_parens=*/false));
    s->expr = std::move(iter);
    if (SkipName("if")) {
      ASSIGN_OR_RETURN(auto filter, ParseExpression(/*with_condexpr=*/true));
      s->filter = std::move(filter);
    }
    if (IsName(cur(), "recursive")) return Error(cur().line, "recursive loops are not supported");
    RETURN_IF_ERROR(ExpectBlockEnd());
    ++loop_depth_;
    std::string end;
    RETURN_IF_ERROR(Subparse({"endfor", "else"}, &s->body, &end));
    --loop_depth_;
    next();
    RETURN_IF_ERROR(ExpectBlockEnd());
    if (end == "else") {
      RETURN_IF_ERROR(Subparse({"endfor"}, &s->else_body, &end));
      next();
      RETURN_IF_ERROR(ExpectBlockEnd());
    }
    return absl::OkStatus();
  }

  absl::Status ParseIf(Stmt* s) {
    s->kind = Stmt::Kind::kIf;
    next();
    while (true) {
      IfBranch branch;
      ASSIGN_OR_RETURN(auto cond, ParseTuple(/*with_condexpr=*/false, {}, /*explicit_parens=*/false));
      branch.condition = std::move(cond);
      RETURN_IF_ERROR(ExpectBlockEnd());
      std::string end;
      RETURN_IF_ERROR(Subparse({"elif", "else", "endif"}, &branch.body, &end));
      next();
      s->branches.push_back(std::move(branch));
      if (end == "elif") continue;
      RETURN_IF_ERROR(ExpectBlockEnd());
      if (end == "else") {
        RETURN_IF_ERROR(Subparse({"endif"}, &s->else_body, &end));
        next();
        RETURN_IF_ERROR(ExpectBlockEnd());
      }
      return absl::OkStatus();
    }
  }

  absl::Status ParseSet(Stmt* s) {
    next();
    if (cur().type == TokenType::kName && IsOp(look(), ".")) {
      s->kind = Stmt::Kind::kSetAttr;
      s->targets.push_back(cur().value);
      next();
      next();
      ASSIGN_OR_RETURN(auto attr, ExpectName());
      s->attribute = std::move(attr);
      RETURN_IF_ERROR(ExpectOp("="));
    } else {
      RETURN_IF_ERROR(ParseTargets(&s->targets));
      if (!SkipOp("=")) {
        if (s->targets.size() != 1) return Error(s->line, "a block {% set %} takes one name");
        s->kind = Stmt::Kind::kSetBlock;
        while (IsOp(cur(), "|")) {
          ASSIGN_OR_RETURN(auto f, ParseFilter(nullptr));
          s->filters.push_back(std::move(f));
        }
        RETURN_IF_ERROR(ExpectBlockEnd());
        std::string end;
        RETURN_IF_ERROR(Subparse({"endset"}, &s->body, &end));
        next();
        return ExpectBlockEnd();
      }
      s->kind = Stmt::Kind::kSet;
    }
    ASSIGN_OR_RETURN(auto value, ParseTuple(/*with_condexpr=*/true, {}, /*explicit_parens=*/false));
    s->expr = std::move(value);
    return ExpectBlockEnd();
  }

  int loop_depth_ = 0;
};

}  // namespace

absl::StatusOr<Body> Parse(std::vector<Token> tokens) { return Parser(std::move(tokens)).ParseTemplate(); }

}  // namespace moe::chat
