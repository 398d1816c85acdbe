// Stand-ins for the Unreal Engine API used by AffettoComponent, for a compile check only; signatures follow UE 5.x
// (5.3/5.4). Never put these headers in a game: they declare, they do not implement.
//
// CoreMinimal.h: what AffettoComponent takes from the Core module (Containers/UnrealString.h,
// Containers/Array.h, UObject/NameTypes.h, Math/UnrealMathUtility.h, Logging/LogMacros.h,
// Delegates/DelegateCombinations.h). TCHAR is a 16-bit character with TEXT("...") = u"...", as on
// the engine's Linux and Mac builds (Windows: wchar_t and L"...").

#pragma once

#include <cstddef>
#include <cstdint>
#include <type_traits>

using int32 = std::int32_t;
using int64 = std::int64_t;
using uint8 = std::uint8_t;
using uint32 = std::uint32_t;
using TCHAR = char16_t;

#define UE_STANDIN_TEXT_PASTE(x) u##x
#define TEXT(x) UE_STANDIN_TEXT_PASTE(x)

namespace ESearchCase
{
	enum Type
	{
		CaseSensitive,
		IgnoreCase,
	};
}

template <typename InElementType>
class TArray;

class FString
{
public:
	FString();
	FString(const TCHAR* Src);  // implicit, like the engine's FString(const CharType*)

	const TCHAR* operator*() const;
	const TCHAR& operator[](int32 Index) const;
	FString& AppendChar(TCHAR InChar);
	bool IsEmpty() const;
	int32 Len() const;
	bool Equals(const FString& Other, ESearchCase::Type SearchCase = ESearchCase::CaseSensitive) const;
	// Splits at each pchDelim; InCullEmpty drops the empty pieces (so "" gives none). Returns how many.
	int32 ParseIntoArray(TArray<FString>& OutArray, const TCHAR* pchDelim, bool InCullEmpty = true) const;

	// Case-INSENSITIVE in the engine ("@note case insensitive"): use Equals(..., CaseSensitive) for exact matches.
	friend bool operator==(const FString& Lhs, const FString& Rhs);
	friend bool operator==(const FString& Lhs, const TCHAR* Rhs);
};

template <typename InElementType>
class TArray
{
public:
	int32 Num() const;
	InElementType* begin();
	InElementType* end();
	const InElementType* begin() const;
	const InElementType* end() const;
};

class FName
{
public:
	FName(const TCHAR* Name);
};

struct FMath
{
	static bool IsFinite(float A);
	static bool IsFinite(double A);

	template <class T>
	static constexpr T Max(const T A, const T B)
	{
		return (B < A) ? A : B;
	}
};

// ---- logging (Logging/LogMacros.h, Logging/LogCategory.h) -------------------------------------------------------

namespace ELogVerbosity
{
	enum Type : uint8
	{
		NoLogging = 0,
		Fatal,
		Error,
		Warning,
		Display,
		Log,
		Verbose,
		VeryVerbose,
		All = VeryVerbose,
	};
}

struct FLogCategoryBase
{
	FLogCategoryBase(const TCHAR* CategoryName, ELogVerbosity::Type DefaultVerbosity,
		ELogVerbosity::Type CompileTimeVerbosity);
};

template <ELogVerbosity::Type InDefaultVerbosity, ELogVerbosity::Type InCompileTimeVerbosity>
struct FLogCategory : public FLogCategoryBase
{
	FLogCategory(const TCHAR* InCategoryName)
		: FLogCategoryBase(InCategoryName, InDefaultVerbosity, InCompileTimeVerbosity)
	{
	}
};

#define DEFINE_LOG_CATEGORY_STATIC(CategoryName, DefaultVerbosity, CompileTimeVerbosity) \
	static struct FLogCategory##CategoryName \
		: public FLogCategory<ELogVerbosity::DefaultVerbosity, ELogVerbosity::CompileTimeVerbosity> \
	{ \
		FLogCategory##CategoryName() : FLogCategory(TEXT(#CategoryName)) {} \
	} CategoryName;

namespace UE::StandIn
{
	template <typename... ArgTypes>
	struct TArgs
	{
	};

	template <typename... ArgTypes>
	TArgs<std::decay_t<ArgTypes>...> ArgsOf(ArgTypes&&...);  // in decltype only

	// 's': a TCHAR string, 'd': an integer, 'f': a floating-point number, '?': anything else.
	template <typename T>
	constexpr char KindOf()
	{
		if constexpr (std::is_same_v<T, const TCHAR*> || std::is_same_v<T, TCHAR*>)
			return 's';
		else if constexpr (std::is_integral_v<T> || std::is_enum_v<T>)
			return 'd';
		else if constexpr (std::is_floating_point_v<T>)
			return 'f';
		else
			return '?';
	}

	constexpr char ConversionKind(TCHAR C)
	{
		switch (C)
		{
		case u's': return 's';
		case u'd': case u'i': case u'u': case u'x': case u'X': case u'o': case u'c': return 'd';
		case u'f': case u'F': case u'e': case u'E': case u'g': case u'G': return 'f';
		default: return '!';  // matches no argument
		}
	}

	// A smaller UE_VALIDATE_FORMAT_STRING (UE 5.x checks every UE_LOG at compile time): each printf
	// conversion takes an argument of its kind (%s a TCHAR pointer: an FString needs its *), and none is left over.
	template <typename... ArgTypes>
	constexpr bool FormatMatches(const TCHAR* Format, TArgs<ArgTypes...>)
	{
		constexpr char Kinds[] = {KindOf<ArgTypes>()..., '\0'};
		std::size_t Next = 0;
		for (const TCHAR* C = Format; *C; ++C)
		{
			if (*C != u'%')
				continue;
			++C;
			if (*C == u'%')
				continue;
			while (*C == u'-' || *C == u'+' || *C == u' ' || *C == u'#' || *C == u'.' || (*C >= u'0' && *C <= u'9')
				|| *C == u'h' || *C == u'l' || *C == u'L' || *C == u'z' || *C == u'j' || *C == u't')
				++C;
			if (!*C || Next >= sizeof...(ArgTypes) || Kinds[Next] != ConversionKind(*C))
				return false;
			++Next;
		}
		return Next == sizeof...(ArgTypes);
	}

	template <typename... ArgTypes>
	void Log(const FLogCategoryBase& Category, ELogVerbosity::Type Verbosity, const TCHAR* Format, ArgTypes... Args);
}

#define UE_LOG(CategoryName, Verbosity, Format, ...) \
	{ \
		static_assert(::UE::StandIn::FormatMatches(Format, decltype(::UE::StandIn::ArgsOf(__VA_ARGS__))()), \
			"UE_LOG: the format's conversions do not match the arguments"); \
		::UE::StandIn::Log(CategoryName, ::ELogVerbosity::Verbosity, Format __VA_OPT__(,) __VA_ARGS__); \
	}

// ---- dynamic multicast delegates (Delegates/DelegateCombinations.h, Delegates/Delegate.h) ------------------------

template <typename... ParamTypes>
class TBaseDynamicMulticastDelegate
{
public:
	// The method pointer is not deduced (the engine's TMethodPtrResolver<UserClass>::FMethodPtr): it must be a
	// member of UserClass taking exactly the delegate's parameter types.
	template <class UserClass>
	void __Internal_AddDynamic(UserClass* InUserObject,
		std::type_identity_t<void (UserClass::*)(ParamTypes...)> InMethodPtr, FName InFunctionName);

	template <class UserClass>
	void __Internal_RemoveDynamic(UserClass* InUserObject,
		std::type_identity_t<void (UserClass::*)(ParamTypes...)> InMethodPtr, FName InFunctionName);
};

#define STATIC_FUNCTION_FNAME(str) FName(str)
#define AddDynamic(UserObject, FuncName) \
	__Internal_AddDynamic(UserObject, FuncName, STATIC_FUNCTION_FNAME(TEXT(#FuncName)))
#define RemoveDynamic(UserObject, FuncName) \
	__Internal_RemoveDynamic(UserObject, FuncName, STATIC_FUNCTION_FNAME(TEXT(#FuncName)))

#define DECLARE_DYNAMIC_MULTICAST_DELEGATE_OneParam(DelegateName, T1, N1) \
	class DelegateName : public TBaseDynamicMulticastDelegate<T1> \
	{ \
	public: \
		void Broadcast(T1 N1) const; \
	}
#define DECLARE_DYNAMIC_MULTICAST_DELEGATE_TwoParams(DelegateName, T1, N1, T2, N2) \
	class DelegateName : public TBaseDynamicMulticastDelegate<T1, T2> \
	{ \
	public: \
		void Broadcast(T1 N1, T2 N2) const; \
	}
#define DECLARE_DYNAMIC_MULTICAST_DELEGATE_ThreeParams(DelegateName, T1, N1, T2, N2, T3, N3) \
	class DelegateName : public TBaseDynamicMulticastDelegate<T1, T2, T3> \
	{ \
	public: \
		void Broadcast(T1 N1, T2 N2, T3 N3) const; \
	}
#define DECLARE_DYNAMIC_MULTICAST_DELEGATE_FourParams(DelegateName, T1, N1, T2, N2, T3, N3, T4, N4) \
	class DelegateName : public TBaseDynamicMulticastDelegate<T1, T2, T3, T4> \
	{ \
	public: \
		void Broadcast(T1 N1, T2 N2, T3 N3, T4 N4) const; \
	}
#define DECLARE_DYNAMIC_MULTICAST_DELEGATE_FiveParams(DelegateName, T1, N1, T2, N2, T3, N3, T4, N4, T5, N5) \
	class DelegateName : public TBaseDynamicMulticastDelegate<T1, T2, T3, T4, T5> \
	{ \
	public: \
		void Broadcast(T1 N1, T2 N2, T3 N3, T4 N4, T5 N5) const; \
	}
#define DECLARE_DYNAMIC_MULTICAST_DELEGATE_NineParams(DelegateName, T1, N1, T2, N2, T3, N3, T4, N4, T5, N5, T6, N6, T7, \
	N7, T8, N8, T9, N9) \
	class DelegateName : public TBaseDynamicMulticastDelegate<T1, T2, T3, T4, T5, T6, T7, T8, T9> \
	{ \
	public: \
		void Broadcast(T1 N1, T2 N2, T3 N3, T4 N4, T5 N5, T6 N6, T7 N7, T8 N8, T9 N9) const; \
	}
