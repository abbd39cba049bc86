// guard.js runs in every VM before the PAC script. It wraps the builtins
// that could, in one call, allocate without bound or loop in Go where goja
// cannot interrupt them, and removes the globals a PAC script has no use for.
// It evaluates to a function that Go calls with the limits and the checks it
// implements (see guard.go).
//
// Every wrapper reaches the originals only through references captured here,
// before the script runs, and calls them with callFn/applyFn (bound once), so
// a script that replaces Function.prototype.call or any other builtin can
// neither skip a check nor get hold of an unwrapped original. Arguments that
// the original would convert with user code (toString, valueOf) are
// converted once here and passed on as primitives, so that the value checked
// is the value used.
(function (L, G) {
	"use strict";
	var FP = G.Function.prototype;
	var callFn = FP.call.bind(FP.call);
	var applyFn = FP.call.bind(FP.apply);
	var O = G.Object, S = G.String, N = G.Number;
	var defineProperty = O.defineProperty;
	var getOwnPropertyDescriptor = O.getOwnPropertyDescriptor;
	var getPrototypeOf = O.getPrototypeOf;
	var objectKeys = O.keys, objectCreate = O.create, setPrototypeOf = O.setPrototypeOf;
	var isArray = G.Array.isArray;
	var RangeErr = G.RangeError, TypeErr = G.TypeError, SyntaxErr = G.SyntaxError;
	var symIterator = G.Symbol.iterator, symSplit = G.Symbol.split, symReplace = G.Symbol.replace;
	var symMatch = G.Symbol.match, symMatchAll = G.Symbol.matchAll, symSearch = G.Symbol.search;
	var SP = G.String.prototype, AP = G.Array.prototype, RP = G.RegExp.prototype;
	var strSlice = SP.slice;
	var nativeStringify = G.JSON.stringify, JSONobj = G.JSON;
	var objToString = O.prototype.toString;
	var sourceGetter = getOwnPropertyDescriptor(RP, "source").get;
	var flagsGetter = getOwnPropertyDescriptor(RP, "flags").get;
	var maxStr = L.maxStr, maxLen = L.maxLen, maxArgs = L.maxArgs, maxDepth = L.maxDepth;
	var regexOK = L.regexOK, codeOK = L.codeOK, jsonOK = L.jsonOK;

	function install(obj, name, f) {
		defineProperty(f, "name", {value: name, configurable: true});
		defineProperty(obj, name, {value: f, writable: true, enumerable: false, configurable: true});
	}
	function tooLong(what) {
		throw new RangeErr(what + ": result longer than " + maxStr + " characters, which PAC scripts may not build");
	}
	function tooMany(what, n) {
		throw new RangeErr(what + ": more than " + n + " elements, which PAC scripts may not use");
	}
	function thisString(t, what) {
		if (t === null || t === undefined) {
			throw new TypeErr("String.prototype." + what + " called on null or undefined");
		}
		return S(t);
	}
	function isObject(v) {
		return (typeof v === "object" && v !== null) || typeof v === "function";
	}
	// lengthOf returns the length of an array-like without running user code
	// twice: it must be an own data property (Arrays, arguments, String
	// objects and plain objects have one) and at most max.
	function lengthOf(o, what, max) {
		if (typeof o === "string") {
			if (o.length > max) tooMany(what, max);
			return o.length;
		}
		if (!isObject(o)) return 0;
		var d = getOwnPropertyDescriptor(o, "length");
		if (d === undefined) return 0;
		if (!("value" in d)) {
			throw new TypeErr(what + ": an array-like whose length is an accessor is not supported in PAC scripts");
		}
		var n = +d.value;
		if (n > max) tooMany(what, max);
		return n;
	}

	// Globals a PAC script has no use for, each with an allocation or loop
	// that cannot be interrupted.
	var drop = ["BigInt", "Proxy", "ArrayBuffer", "SharedArrayBuffer", "DataView", "Atomics", "WeakRef",
		"FinalizationRegistry", "Int8Array", "Uint8Array", "Uint8ClampedArray", "Int16Array", "Uint16Array",
		"Int32Array", "Uint32Array", "Float16Array", "Float32Array", "Float64Array", "BigInt64Array",
		"BigUint64Array"];
	for (var i = 0; i < drop.length; i++) {
		delete G[drop[i]];
	}

	// Strings.
	var repeat0 = SP.repeat;
	install(SP, "repeat", function (count) {
		var s = thisString(this, "repeat"), n = +count;
		if (s.length * n > maxStr) tooLong("String.prototype.repeat");
		return callFn(repeat0, s, n);
	});
	function pad(orig, name) {
		install(SP, name, function (maxLength, fillString) {
			var s = thisString(this, name), n = +maxLength;
			var f = fillString === undefined ? undefined : S(fillString);
			if (n > maxStr) tooLong("String.prototype." + name);
			return callFn(orig, s, n, f);
		});
	}
	pad(SP.padStart, "padStart");
	pad(SP.padEnd, "padEnd");
	install(SP, "concat", function () {
		var r = thisString(this, "concat"), n = arguments.length;
		if (n > maxArgs) tooMany("String.prototype.concat", maxArgs);
		for (var i = 0; i < n; i++) {
			var a = S(arguments[i]);
			if (r.length + a.length > maxStr) tooLong("String.prototype.concat");
			r += a;
		}
		return r;
	});
	var split0 = SP.split;
	install(SP, "split", function (separator, limit) {
		if (this === null || this === undefined) {
			throw new TypeErr("String.prototype.split called on null or undefined");
		}
		if (isObject(separator) && separator[symSplit] !== undefined && separator[symSplit] !== null) {
			return callFn(split0, this, separator, limit); // the separator's own split, checked there for RegExps
		}
		var s = S(this);
		var sep = separator === undefined ? undefined : S(separator);
		var lim = limit === undefined ? undefined : limit >>> 0;
		if (sep !== undefined && s.length > maxLen && (lim === undefined || lim > maxLen)) {
			tooMany("String.prototype.split", maxLen);
		}
		return callFn(split0, s, sep, lim);
	});

	// substitute expands the $ patterns of a replacement string for one
	// match, as String.prototype.replace does (GetSubstitution), from the
	// arguments a replacer function gets.
	function substitute(rep, args) {
		var n = args.length, groups;
		if (n > 2 && typeof args[n - 1] === "object") {
			groups = args[--n];
		}
		var str = args[n - 1], pos = args[n - 2], matched = args[0], m = n - 3, r = "";
		for (var i = 0; i < rep.length; i++) {
			var c = rep[i];
			if (c !== "$" || i + 1 >= rep.length) {
				r += c;
				continue;
			}
			var d = rep[i + 1];
			if (d === "$") {
				r += "$";
				i++;
			} else if (d === "&") {
				r += matched;
				i++;
			} else if (d === "`") {
				r += callFn(strSlice, str, 0, pos);
				i++;
			} else if (d === "'") {
				r += callFn(strSlice, str, pos + matched.length);
				i++;
			} else if (d >= "0" && d <= "9") {
				var k = +d, used = 1;
				var e = rep[i + 2];
				if (e !== undefined && e >= "0" && e <= "9" && k * 10 + (+e) <= m && k * 10 + (+e) >= 1) {
					k = k * 10 + (+e);
					used = 2;
				}
				if (k >= 1 && k <= m) {
					var g = args[k];
					r += g === undefined ? "" : g;
					i += used;
				} else {
					r += "$";
				}
			} else if (d === "<" && groups !== undefined) {
				var end = -1;
				for (var j = i + 2; j < rep.length; j++) {
					if (rep[j] === ">") {
						end = j;
						break;
					}
				}
				if (end < 0) {
					r += "$";
					continue;
				}
				var v = groups[callFn(strSlice, rep, i + 2, end)];
				r += v === undefined ? "" : S(v);
				i = end;
			} else {
				r += "$";
			}
			if (r.length > maxStr) tooLong("String.prototype.replace");
		}
		return r;
	}
	// boundedReplacer returns what to pass to a native replace for the
	// subject s and replaceValue rv with at most matches matches: rv
	// itself when the result cannot grow past maxStr, else a function that
	// builds the same replacements and stops once they grow past it.
	function boundedReplacer(s, rv, matches) {
		var total = s.length;
		if (typeof rv === "function") {
			return function () {
				var r = S(applyFn(rv, undefined, arguments));
				total += r.length;
				if (total > maxStr) tooLong("String.prototype.replace");
				return r;
			};
		}
		var rep = S(rv), dollars = 0;
		for (var i = 0; i < rep.length; i++) {
			if (rep[i] === "$") dollars++;
		}
		if (s.length + matches * (rep.length + dollars * s.length) <= maxStr) {
			return rep;
		}
		return function () {
			var r = dollars > 0 ? substitute(rep, arguments) : rep;
			total += r.length;
			if (total > maxStr) tooLong("String.prototype.replace");
			return r;
		};
	}
	function stringReplace(orig, name, all) {
		install(SP, name, function (searchValue, replaceValue) {
			if (this === null || this === undefined) {
				throw new TypeErr("String.prototype." + name + " called on null or undefined");
			}
			if (isObject(searchValue) && searchValue[symReplace] !== undefined && searchValue[symReplace] !== null) {
				return callFn(orig, this, searchValue, replaceValue); // checked in RegExp.prototype[Symbol.replace]
			}
			var s = S(this), search = S(searchValue);
			var matches = all ? (search.length === 0 ? s.length + 1 : s.length / search.length + 1) : 1;
			return callFn(orig, s, search, boundedReplacer(s, replaceValue, matches));
		});
	}
	stringReplace(SP.replace, "replace", false);
	stringReplace(SP.replaceAll, "replaceAll", true);

	// Arrays: every method that walks an array in Go gets a bounded length.
	function walker(name) {
		var orig = AP[name];
		if (typeof orig !== "function") return;
		install(AP, name, function () {
			lengthOf(this, "Array.prototype." + name, maxLen);
			return applyFn(orig, this, arguments);
		});
	}
	var walkers = ["toLocaleString", "indexOf", "lastIndexOf", "includes", "fill", "reverse", "sort",
		"slice", "splice", "copyWithin", "map", "filter", "forEach", "every", "some", "reduce", "reduceRight",
		"find", "findIndex", "findLast", "findLastIndex", "shift", "unshift", "push", "toReversed", "toSorted",
		"toSpliced", "with"];
	for (var w = 0; w < walkers.length; w++) {
		walker(walkers[w]);
	}
	// join converts each element once, here, and bounds the result; the
	// stack makes a circular array join as "" (as browsers do), and nesting
	// is bounded by the call depth.
	var join0 = AP.join, joining = [];
	install(AP, "join", function (separator) {
		var o = this, n = lengthOf(o, "Array.prototype.join", maxLen);
		if (o === null || o === undefined) {
			throw new TypeErr("Array.prototype.join called on null or undefined");
		}
		for (var i = 0; i < joining.length; i++) {
			if (joining[i] === o) return "";
		}
		var sep = separator === undefined ? "," : S(separator);
		var parts = [], total = n > 0 ? (n - 1) * sep.length : 0;
		if (total > maxStr) tooLong("Array.prototype.join");
		joining[joining.length] = o;
		try {
			for (var j = 0; j < n; j++) {
				var e = o[j];
				var p = e === undefined || e === null ? "" : S(e);
				total += p.length;
				if (total > maxStr) tooLong("Array.prototype.join");
				parts[j] = p;
			}
		} finally {
			joining.length--;
		}
		parts.length = n;
		return callFn(join0, parts, sep);
	});
	var concat0 = AP.concat;
	install(AP, "concat", function () {
		var total = lengthOf(this, "Array.prototype.concat", maxLen) + 1;
		if (arguments.length > maxArgs) tooMany("Array.prototype.concat", maxArgs);
		for (var i = 0; i < arguments.length; i++) {
			var a = arguments[i];
			total += isArray(a) ? lengthOf(a, "Array.prototype.concat", maxLen) : 1;
			if (total > maxLen) tooMany("Array.prototype.concat", maxLen);
		}
		return applyFn(concat0, this, arguments);
	});
	// flat and flatMap are written here: the originals recurse in Go as deep
	// as they are told to, and their output is not bounded by their input.
	function flatInto(out, src, depth, count) {
		var n = lengthOf(src, "Array.prototype.flat", maxLen);
		for (var i = 0; i < n; i++) {
			if (!(i in src)) continue;
			var e = src[i];
			if (depth > 0 && isArray(e)) {
				count = flatInto(out, e, depth - 1, count);
			} else {
				if (count >= maxLen) tooMany("Array.prototype.flat", maxLen);
				defineProperty(out, S(count), {value: e, writable: true, enumerable: true, configurable: true});
				count++;
			}
		}
		return count;
	}
	install(AP, "flat", function () {
		if (this === null || this === undefined) throw new TypeErr("Array.prototype.flat called on null or undefined");
		var d = arguments.length > 0 && arguments[0] !== undefined ? +arguments[0] : 1;
		if (d !== d) d = 0;
		var out = [];
		flatInto(out, O(this), d, 0);
		return out;
	});
	install(AP, "flatMap", function (f, thisArg) {
		if (this === null || this === undefined) throw new TypeErr("Array.prototype.flatMap called on null or undefined");
		if (typeof f !== "function") throw new TypeErr("Array.prototype.flatMap: callback is not a function");
		var o = O(this), n = lengthOf(o, "Array.prototype.flatMap", maxLen), out = [], count = 0;
		for (var i = 0; i < n; i++) {
			if (!(i in o)) continue;
			var e = callFn(f, thisArg, o[i], i, o);
			if (isArray(e)) {
				count = flatInto(out, e, 0, count);
			} else {
				if (count >= maxLen) tooMany("Array.prototype.flatMap", maxLen);
				defineProperty(out, S(count), {value: e, writable: true, enumerable: true, configurable: true});
				count++;
			}
		}
		return out;
	});
	var from0 = G.Array.from, ArrayCtor = G.Array;
	install(ArrayCtor, "from", function (items) {
		if (items !== null && items !== undefined && (typeof items === "string" || items[symIterator] === undefined || items[symIterator] === null)) {
			lengthOf(O(items), "Array.from", maxLen);
		}
		return applyFn(from0, this, arguments);
	});

	// Calls with an array of arguments.
	var apply0 = FP.apply;
	install(FP, "apply", function (thisArg, args) {
		if (args !== null && args !== undefined) lengthOf(args, "Function.prototype.apply", maxArgs);
		return callFn(apply0, this, thisArg, args);
	});
	var R = G.Reflect, reflectApply = R.apply, reflectConstruct = R.construct;
	install(R, "apply", function (target, thisArg, args) {
		lengthOf(args, "Reflect.apply", maxArgs);
		return reflectApply(target, thisArg, args);
	});
	install(R, "construct", function (target, args) {
		lengthOf(args, "Reflect.construct", maxArgs);
		return applyFn(reflectConstruct, undefined, arguments);
	});

	// Own keys of a string are one per character.
	function keysOf(obj, name) {
		var f = obj[name];
		install(obj, name, function (o) {
			if (typeof o === "string" || (isObject(o) && callFn(objToString, o) === "[object String]")) {
				lengthOf(S(o), name, maxLen);
			}
			return applyFn(f, this, arguments);
		});
	}
	var keyFns = ["keys", "values", "entries", "getOwnPropertyNames", "getOwnPropertyDescriptors"];
	for (var kf = 0; kf < keyFns.length; kf++) {
		keysOf(O, keyFns[kf]);
	}
	keysOf(R, "ownKeys");
	var assign0 = O.assign;
	install(O, "assign", function (target) {
		for (var i = 1; i < arguments.length; i++) {
			var a = arguments[i];
			if (typeof a === "string" || (isObject(a) && callFn(objToString, a) === "[object String]")) {
				lengthOf(S(a), "Object.assign", maxLen);
			}
		}
		return applyFn(assign0, this, arguments);
	});

	// Iterators: each step of spreading or destructuring an array or a
	// string runs a JavaScript function, so it can be interrupted.
	function stepper(proto) {
		var next0 = proto.next;
		install(proto, "next", function () {
			return callFn(next0, this);
		});
	}
	stepper(getPrototypeOf([][symIterator]()));
	stepper(getPrototypeOf(""[symIterator]()));

	// Regular expressions: refuse those goja would run with backtracking,
	// which cannot be interrupted.
	function checkRegExp(rx, what) {
		var src = callFn(sourceGetter, rx), fl = callFn(flagsGetter, rx);
		if (!regexOK(src, fl)) {
			throw new SyntaxErr(what + ": /" + callFn(strSlice, src, 0, 64) +
				"/ needs backtracking (a backreference, a lookaround or a repeat count above 1000), which PAC scripts may not use");
		}
		return fl;
	}
	function regexpMethod(key, name, check) {
		var orig = RP[key];
		install(RP, key, function () {
			var fl = checkRegExp(this, "RegExp.prototype." + name);
			if (check) return check(orig, this, fl, arguments);
			return applyFn(orig, this, arguments);
		});
		defineProperty(RP[key], "name", {value: name, configurable: true});
	}
	regexpMethod("exec", "exec");
	regexpMethod("test", "test");
	regexpMethod(symSearch, "[Symbol.search]");
	function globalMatch(orig, rx, fl, args) {
		var s = S(args[0]);
		for (var i = 0; i < fl.length; i++) {
			if (fl[i] === "g") lengthOf(s, "String.prototype.match", maxLen);
		}
		return callFn(orig, rx, s);
	}
	regexpMethod(symMatch, "[Symbol.match]", globalMatch);
	regexpMethod(symMatchAll, "[Symbol.matchAll]", function (orig, rx, fl, args) {
		var s = S(args[0]);
		lengthOf(s, "String.prototype.matchAll", maxLen);
		return callFn(orig, rx, s);
	});
	regexpMethod(symSplit, "[Symbol.split]", function (orig, rx, fl, args) {
		var s = S(args[0]), limit = args[1];
		var lim = limit === undefined ? undefined : limit >>> 0;
		if (s.length > maxLen && (lim === undefined || lim > maxLen)) tooMany("String.prototype.split", maxLen);
		return callFn(orig, rx, s, lim);
	});
	regexpMethod(symReplace, "[Symbol.replace]", function (orig, rx, fl, args) {
		var s = S(args[0]);
		return callFn(orig, rx, s, boundedReplacer(s, args[1], s.length + 1));
	});

	// JSON.
	var parse0 = JSONobj.parse;
	install(JSONobj, "parse", function (text, reviver) {
		var t = S(text), m = jsonOK(t);
		if (m !== "") throw new SyntaxErr("JSON.parse: " + m);
		return callFn(parse0, JSONobj, t, reviver);
	});
	// stringify copies the value here into plain objects, arrays and
	// primitives (running toJSON, the replacer and getters once, in
	// JavaScript, bounded in depth and size), then lets the original
	// stringify the copy.
	install(JSONobj, "stringify", function (value, replacer, space) {
		var replacerFn, keys, gap = "";
		if (typeof replacer === "function") {
			replacerFn = replacer;
		} else if (isArray(replacer)) {
			keys = [];
			var rn = lengthOf(replacer, "JSON.stringify", maxLen);
			for (var i = 0; i < rn; i++) {
				var k = replacer[i], ks;
				if (typeof k === "string" || typeof k === "number") ks = S(k);
				else if (isObject(k) && (callFn(objToString, k) === "[object String]" || callFn(objToString, k) === "[object Number]")) ks = S(k);
				else continue;
				var dup = false;
				for (var j = 0; j < keys.length; j++) {
					if (keys[j] === ks) dup = true;
				}
				if (!dup) keys[keys.length] = ks;
			}
		}
		if (isObject(space)) {
			var cls = callFn(objToString, space);
			if (cls === "[object Number]") space = N(space);
			else if (cls === "[object String]") space = S(space);
		}
		if (typeof space === "number") {
			for (var g = 0; g < 10 && g < space; g++) gap += " ";
		} else if (typeof space === "string") {
			gap = callFn(strSlice, space, 0, 10);
		}
		var size = 0, path = [];
		function grow(n) {
			size += n;
			if (size > maxStr) tooLong("JSON.stringify");
		}
		function copy(holder, key, depth) {
			var v = holder[key];
			if (isObject(v) && typeof v.toJSON === "function") v = callFn(v.toJSON, v, key);
			if (replacerFn !== undefined) v = callFn(replacerFn, holder, key, v);
			if (isObject(v) && typeof v !== "function") {
				var c = callFn(objToString, v);
				if (c === "[object Number]") v = N(v);
				else if (c === "[object String]") v = S(v);
				else if (c === "[object Boolean]") v = v.valueOf();
			}
			if (typeof v === "string") {
				grow(v.length + 2);
				return v;
			}
			if (!isObject(v) || typeof v === "function") {
				grow(24);
				return v;
			}
			if (depth >= maxDepth) throw new RangeErr("JSON.stringify: nested deeper than " + maxDepth);
			for (var p = 0; p < path.length; p++) {
				if (path[p] === v) throw new TypeErr("JSON.stringify: converting a circular structure");
			}
			path[path.length] = v;
			var out, n, i, kk;
			if (isArray(v)) {
				out = [];
				setPrototypeOf(out, null); // no toJSON of a script's for the original to find
				n = lengthOf(v, "JSON.stringify", maxLen);
				for (i = 0; i < n; i++) {
					grow(2 + gap.length * (depth + 1));
					defineProperty(out, S(i), {value: copy(v, S(i), depth + 1), writable: true, enumerable: true, configurable: true});
				}
			} else {
				out = objectCreate(null);
				var ks = keys !== undefined ? keys : objectKeys(v);
				for (i = 0; i < ks.length; i++) {
					kk = ks[i];
					var cv = copy(v, kk, depth + 1);
					if (cv === undefined || typeof cv === "function") continue;
					grow(kk.length + 4 + gap.length * (depth + 1));
					defineProperty(out, kk, {value: cv, writable: true, enumerable: true, configurable: true});
				}
			}
			path.length--;
			return out;
		}
		var root = objectCreate(null);
		defineProperty(root, "", {value: value, writable: true, enumerable: true, configurable: true});
		return callFn(nativeStringify, JSONobj, copy(root, "", 0), undefined, gap);
	});

	// Code compiled at run time: eval (always indirect here: it runs in
	// the global scope) and the Function constructors.
	var eval0 = G.eval;
	install(G, "eval", function (x) {
		if (typeof x !== "string") return x;
		var m = codeOK(x);
		if (m !== "") throw new SyntaxErr("eval: " + m);
		return eval0(x);
	});
	function ctor(orig, proto, name) {
		var f = function () {
			var n = arguments.length, args = [], all = "";
			if (n > maxArgs) tooMany(name, maxArgs);
			for (var i = 0; i < n; i++) {
				args[i] = S(arguments[i]);
				all += args[i] + "\n";
			}
			var m = codeOK(all);
			if (m !== "") throw new SyntaxErr(name + ": " + m);
			return applyFn(orig, undefined, args);
		};
		defineProperty(f, "name", {value: name, configurable: true});
		defineProperty(f, "prototype", {value: proto, writable: false, enumerable: false, configurable: false});
		defineProperty(proto, "constructor", {value: f, writable: true, enumerable: false, configurable: true});
		return f;
	}
	var FunctionCtor = ctor(G.Function, FP, "Function");
	defineProperty(G, "Function", {value: FunctionCtor, writable: true, enumerable: false, configurable: true});
	var protos = ["(function*(){})", "(async function(){})", "(async function*(){})"];
	var names = ["GeneratorFunction", "AsyncFunction", "AsyncGeneratorFunction"];
	for (var q = 0; q < protos.length; q++) {
		var proto;
		try {
			proto = getPrototypeOf(eval0(protos[q]));
		} catch (e) {
			continue; // not supported by this engine
		}
		ctor(proto.constructor, proto, names[q]);
	}
})
